"""Merged IC-Light weights kept between generations, so re-activation needs no file read and no merge.

One entry at most (one UNet copy of RAM), keyed by what the weights were made from: the checkpoint
UNet's original weights, the IC-Light file's content, the dtype and the device. Idle weights live in
RAM (pinned when CUDA is present), never on the GPU, so VRAM stays where plain A1111 keeps it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

from .lora_bookkeeping import original_parameters

SAMPLES_PER_PARAMETER = 64


@dataclass(frozen=True)
class MergeKey:
    checkpoint: str
    offsets: str
    dtype: str
    device: str


def unet_fingerprint(unet: torch.nn.Module) -> str:
    """A cheap content fingerprint of the UNet's original weights (under any Lora applied in place):
    names, shapes and an evenly strided sample of every parameter."""
    digest = hashlib.sha256()
    samples = []
    for name, tensor, _ in original_parameters(unet):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        flat = tensor.detach().reshape(-1)
        samples.append(flat[:: max(1, flat.numel() // SAMPLES_PER_PARAMETER)].float().cpu())
    digest.update(torch.cat(samples).numpy().tobytes())
    return digest.hexdigest()


class MergedWeightsCache:
    def __init__(self) -> None:
        self.key: MergeKey | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def weights_for(self, key: MergeKey, merge: Callable[[], dict[str, torch.Tensor]], device: torch.device | str) -> dict[str, torch.Tensor]:
        """Cached weights on `device` when `key` matches; otherwise `merge()`, kept for next time."""
        if self.key == key and self.weights is not None:
            return {k: v.to(device, non_blocking=True) for k, v in self.weights.items()}
        self.clear()
        merged = merge()
        self.key, self.weights = key, {k: keep_in_ram(v) for k, v in merged.items()}
        return merged

    def clear(self) -> None:
        self.key, self.weights = None, None


def keep_in_ram(tensor: torch.Tensor) -> torch.Tensor:
    """A RAM copy (pinned for fast transfers when CUDA is present); CPU tensors are kept as they are."""
    if tensor.device.type == "cpu":
        return tensor
    return tensor.to("cpu").pin_memory()
