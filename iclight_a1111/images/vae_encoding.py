"""Images into latents the way the IC-Light reference does it."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

GREY = 127


def cover_size(w: int, h: int, width: int, height: int) -> tuple[int, int]:
    """The size the reference scales a w x h image to so that it covers width x height."""
    scale = max(width / w, height / h)
    return round(w * scale), round(h * scale)


def resize_and_center_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale (LANCZOS) so the image covers width x height, then cut out the centre."""
    pil = Image.fromarray(image)
    resized = pil.resize(cover_size(pil.width, pil.height, width, height), Image.LANCZOS)
    # The reference crops at round((resized - target) / 2): Python's round, halves to even.
    left = round((resized.width - width) / 2)
    top = round((resized.height - height) / 2)
    return np.array(resized.crop((left, top, left + width, top + height)))


def composite_on_grey(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`127 + (rgb - 127) * alpha` as uint8; alpha in 0..1, HxW or HxWx1."""
    alpha = alpha.astype(np.float32)
    if alpha.ndim == 2:
        alpha = alpha[..., None]
    out = GREY + (rgb.astype(np.float32) - GREY) * alpha
    return out.clip(0, 255).astype(np.uint8)


def vae_input(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 images -> float NCHW with grey 127 at exactly 0 (`x / 127 - 1`, as the reference)."""
    batch = torch.from_numpy(np.stack([np.asarray(i, dtype=np.uint8) for i in images]))
    return batch.permute(0, 3, 1, 2).float() / 127.0 - 1.0


def encode_latents(
    images: Sequence[np.ndarray] | np.ndarray,
    encode_first_stage: Callable[[torch.Tensor], Any],
    scale_factor: float,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Latents of uint8 images: the mode of the VAE's posterior times `scale_factor`.

    `encode_first_stage` is ldm's `LatentDiffusion.encode_first_stage` (returns the posterior);
    ldm's `get_first_stage_encoding` would draw a sample instead, which the reference does not.
    """
    with torch.no_grad():
        posterior = encode_first_stage(vae_input(images).to(device, dtype))
        return posterior.mode() * scale_factor
