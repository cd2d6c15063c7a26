"""Where the offsets are merged: IC-Light weights = checkpoint weights + offsets."""
from __future__ import annotations

import torch

from .device_moves import DeviceMoves
from .lora_bookkeeping import original_parameters
from .offset_files import IcLightOffsets
from .page_lock import PageLock
from .weight_arena import WeightArena, arena_for
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
    arena: bool = True,
    page_lock: PageLock | None = None,
) -> dict[str, torch.Tensor]:
    """New parameters `base + offset` for every UNet parameter; the UNet itself is not touched.

    The base is the checkpoint's original weight (under any Lora applied in place). Sums are taken
    in float32, as the reference does, then stored in `dtype` on `device` (default: the parameter's).
    Offsets brought to the device and bases brought elsewhere are counted in `moves`. With `arena`,
    a copy made in RAM is laid out in one `WeightArena`, whose pages `page_lock` locks once it is
    written (a parked copy, for its transfers to the GPU), until the copy is freed.
    """
    moves = moves or DeviceMoves()
    parameters = list(original_parameters(unet))
    targets = {name: (torch.device(device) if device is not None else param.device, dtype or param.dtype)
               for name, _, param in parameters}
    dtypes = {target_dtype for _, target_dtype in targets.values()}
    in_ram = arena and len(dtypes) == 1 and all(target.type == "cpu" for target, _ in targets.values())
    ram = arena_for([offsets.shapes[name] for name in targets], dtypes.pop(), page_lock) if in_ram else None
    merged = {}
    with torch.no_grad():
        for name, base, _ in tracked(parameters, "IC-Light: reading and merging weights"):
            target, target_dtype = targets[name]
            offset = moves.to(offsets.tensors[name], target)
            weight = merged_weight(moves.to(base, target), offset, target_dtype, ram)
            # As parameters: a cached copy is swapped in again and again, and making 686 costs more than the swap.
            merged[name] = torch.nn.Parameter(weight, requires_grad=False)
    if ram is not None and page_lock is not None:
        ram.lock(page_lock)
    return merged


def merged_weight(base: torch.Tensor, offset: torch.Tensor, dtype: torch.dtype, ram: WeightArena | None) -> torch.Tensor:
    """`base + offset` summed in float32, stored in `dtype` (in `ram` when given)."""
    if base.shape == offset.shape and base.dtype == dtype == torch.float32:
        # Converting the offset in a copy and adding in place gives the same bits as `base + offset`
        # (addition commutes), and is several times faster on a CPU than one mixed-type addition.
        out = ram.empty(offset.shape, dtype) if ram is not None else torch.empty_like(offset, dtype=dtype)
        return out.copy_(offset).add_(base)
    base = base.to(torch.float32)
    if base.shape != offset.shape:
        base = widen_first_conv(base, offset.shape[1])
    # One pass: type promotion adds an fp16/bf16 offset to the float32 base in float32.
    total = torch.add(base, offset)
    return ram.empty(total.shape, dtype).copy_(total) if ram is not None else total.to(dtype)
