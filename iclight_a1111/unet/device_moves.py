"""Tensors moved between devices, counted: what a generation costs in transfers is a figure we report."""
from __future__ import annotations

from dataclasses import dataclass

import torch


def normalized(device: torch.device | str) -> torch.device:
    """`cuda` as `cuda:N` for the current device N, so both spellings compare equal."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


@dataclass
class DeviceMoves:
    """Counts the bytes of every tensor it moves to another device."""

    bytes: int = 0

    def to(self, tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        if tensor.device == device or normalized(tensor.device) == normalized(device):
            return tensor
        self.bytes += tensor.numel() * tensor.element_size()
        return tensor.to(device)
