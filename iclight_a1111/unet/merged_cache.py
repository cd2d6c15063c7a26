"""Merged IC-Light weights kept between generations, so re-activation needs no file read and no merge.

One entry at most (one UNet copy), keyed by what the weights were made from: the checkpoint UNet's
original weights, the IC-Light file's content, the dtype, and where the entry lives; and held for
one UNet object, the loaded model it was merged for (a model switched away from or unloaded must not
keep a UNet copy alive, see `held_for`). An entry lives
where its weights run ("keep": on the GPU beside the checkpoint, so nothing moves per generation) or
in RAM ("park": pinned when CUDA is present, moved to the GPU per generation).
"""
from __future__ import annotations

import hashlib
import weakref
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
        self.owner: weakref.ref | None = None  # the UNet object the entry was merged for

    def weights_for(
        self, key: MergeKey, owner: torch.nn.Module, merge: Callable[[], dict[str, torch.Tensor]], in_ram: bool,
        moves: DeviceMoves,
    ) -> dict[str, torch.Tensor]:
        """The cached weights when `key` matches and they were merged for `owner`; otherwise `merge()`,
        kept for `owner` (in RAM when `in_ram`)."""
        if self.key == key and self.weights is not None and self.held_for(owner):
            return self.weights
        self.clear()
        merged = merge()
        if in_ram:
            for name, tensor in merged.items():  # one tensor at a time: never two copies of the UNet
                merged[name] = keep_in_ram(tensor, moves)
        self.key, self.weights, self.owner = key, merged, weakref.ref(owner)
        return merged

    def held_for(self, unet: torch.nn.Module) -> bool:
        """Whether an entry is held and was merged for this very UNet object."""
        return unet is not None and self.weights is not None and self.owner is not None and self.owner() is unet

    def clear(self) -> None:
        self.key, self.weights, self.owner = None, None, None


def keep_in_ram(tensor: torch.Tensor, moves: DeviceMoves) -> torch.Tensor:
    """`tensor` in RAM, pinned for fast transfers to the GPU when CUDA is present (pinning needs CUDA:
    it raises on CPU, DirectML and XPU builds)."""
    in_ram = moves.to(tensor, "cpu")
    return in_ram.pin_memory() if torch.cuda.is_available() and not in_ram.is_pinned() else in_ram
