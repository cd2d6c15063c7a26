"""Detail tools around a relight: restore the subject's fine detail, reinforce it in the light map."""
from __future__ import annotations

import numpy as np
import torch


def gaussian_kernel(size: int) -> torch.Tensor:
    """1-D Gaussian of odd `size`, sigma derived from the size as OpenCV does for sigma 0."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return kernel / kernel.sum()


def gaussian_blur(image: np.ndarray, size: int) -> np.ndarray:
    """HxWxC image blurred with an odd `size` Gaussian (separable, edges mirrored), as float64."""
    if size % 2 == 0 or size < 1:
        raise ValueError(f"blur size must be odd and positive, got {size}")
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64)).permute(2, 0, 1)[:, None]
    kernel = gaussian_kernel(size)
    x = torch.nn.functional.conv2d(mirror_pad(x, size // 2, dim=-1), kernel.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(mirror_pad(x, size // 2, dim=-2), kernel.view(1, 1, -1, 1))
    return x[:, 0].permute(1, 2, 0).numpy()


def mirror_pad(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """Pad one spatial side pair by mirroring (OpenCV's default border); by repeating when too small."""
    pads = (pad, pad, 0, 0) if dim == -1 else (0, 0, pad, pad)
    mode = "reflect" if x.shape[dim] > pad else "replicate"
    return torch.nn.functional.pad(x, pads, mode=mode)


def restore_detail(relit: np.ndarray, original: np.ndarray, size: int) -> np.ndarray:
    """The relit image's light with the original's detail: `original + blur(relit) - blur(original)`."""
    restored = original.astype(np.float64) + gaussian_blur(relit, size) - gaussian_blur(original, size)
    return restored.round().clip(0, 255).astype(np.uint8)


def reinforce_foreground(light_map: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The foreground pasted onto the light map where `alpha` (0..1, HxW) says the subject is."""
    a = alpha.astype(np.float64)[..., None]
    mixed = light_map.astype(np.float64) * (1 - a) + foreground.astype(np.float64) * a
    return mixed.round().clip(0, 255).astype(np.uint8)
