"""Where the offsets are merged: IC-Light weights = checkpoint weights + offsets."""
from __future__ import annotations

import torch

from .device_moves import DeviceMoves
from .lora_bookkeeping import original_parameters
from .offset_files import IcLightOffsets
from ..progress import tracked


def widen_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first-conv weight with `in_channels` inputs: zeros, the original weight in the first channels."""
    wide = weight.new_zeros((weight.shape[0], in_channels, *weight.shape[2:]))
    wide[:, : weight.shape[1]] = weight
    return wide


def merge_offsets(
    unet: torch.nn.Module,
    offsets: IcLightOffsets,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    moves: DeviceMoves | None = None,
) -> dict[str, torch.Tensor]:
    """New tensors `base + offset` for every UNet parameter; the UNet itself is not touched.

    The base is the checkpoint's original weight (under any Lora applied in place). Sums are taken
    in float32, as the reference does, then stored in `dtype` on `device` (default: the parameter's).
    Offsets brought to the device and bases brought elsewhere are counted in `moves`.
    """
    moves = moves or DeviceMoves()
    merged = {}
    with torch.no_grad():
        for name, base, param in tracked(original_parameters(unet), "IC-Light: reading and merging weights"):
            target = torch.device(device) if device is not None else param.device
            offset = moves.to(offsets.tensors[name], target)
            base = moves.to(base, target).to(torch.float32)
            if base.shape != offset.shape:
                base = widen_first_conv(base, offset.shape[1])
            # One pass: type promotion adds an fp16/bf16 offset to the float32 base in float32.
            merged[name] = torch.add(base, offset).to(dtype or param.dtype)
    return merged
