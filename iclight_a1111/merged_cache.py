"""Merged IC-Light weights kept between generations, so re-activation needs no file read and no merge.

One entry at most (one UNet copy), keyed by what the weights were made from: the checkpoint UNet's
original weights, the IC-Light file's content, the dtype, and where the entry lives. An entry lives
where its weights run ("keep": on the GPU beside the checkpoint, so nothing moves per generation) or
in RAM ("park": pinned when CUDA is present, moved to the GPU per generation).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

from .device_moves import DeviceMoves
from .lora_bookkeeping import original_parameters

SAMPLES_PER_PARAMETER = 64


@dataclass(frozen=True)
class MergeKey:
    checkpoint: str
    offsets: str
    dtype: str
    placement: str


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

    def weights_for(
        self, key: MergeKey, merge: Callable[[], dict[str, torch.Tensor]], in_ram: bool, moves: DeviceMoves,
    ) -> dict[str, torch.Tensor]:
        """The cached weights when `key` matches; otherwise `merge()`, kept (in RAM when `in_ram`)."""
        if self.key == key and self.weights is not None:
            return self.weights
        self.clear()
        merged = merge()
        if in_ram:
            for name, tensor in merged.items():  # one tensor at a time: never two copies of the UNet
                merged[name] = keep_in_ram(tensor, moves)
        self.key, self.weights = key, merged
        return merged

    def clear(self) -> None:
        self.key, self.weights = None, None


def keep_in_ram(tensor: torch.Tensor, moves: DeviceMoves) -> torch.Tensor:
    """`tensor` in RAM, pinned for fast transfers to the GPU when CUDA is present (pinning needs CUDA:
    it raises on CPU, DirectML and XPU builds)."""
    in_ram = moves.to(tensor, "cpu")
    return in_ram.pin_memory() if torch.cuda.is_available() and not in_ram.is_pinned() else in_ram
