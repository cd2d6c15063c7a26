"""RAM for one merged UNet copy: a single anonymous mapping, on transparent huge pages where Linux has them.

A first activation writes a whole UNet copy into memory the process never touched. With 4 KiB pages
that is about 800 000 page faults for an fp32 SD 1.5 UNet, which cost more than the additions. A
mapping advised for huge pages faults 2 MiB at a time. It is unmapped when the last tensor made in
it is freed, so a released copy goes straight back to the system.
"""
from __future__ import annotations

import math
import mmap
from typing import Iterable

import torch

ALIGNMENT = 64  # bytes: every tensor starts on a cache line, as the C allocator would place it
HUGE_PAGES = hasattr(mmap, "MADV_HUGEPAGE")  # Linux; elsewhere torch's own allocator serves the copy
ARENA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


class WeightArena:
    """Tensors carved one after another out of one mapping sized for all of them."""

    def __init__(self, nbytes: int) -> None:
        self.mapping = mmap.mmap(-1, max(nbytes, ALIGNMENT), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            self.mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # a kernel built without transparent huge pages: 4 KiB pages, slower to fill
            pass
        self.used = 0

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor in the arena."""
        numel = math.prod(shape)
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if numel == 0:
            return torch.empty(shape, dtype=dtype)
        if self.used + nbytes > len(self.mapping):
            raise MemoryError(f"weight arena of {len(self.mapping)} bytes is full")
        tensor = torch.frombuffer(self.mapping, dtype=dtype, count=numel, offset=self.used).view(shape)
        self.used += aligned(nbytes)
        return tensor


def arena_for(shapes: Iterable[tuple[int, ...]], dtype: torch.dtype) -> WeightArena | None:
    """An arena holding a tensor of `dtype` for each shape, or None where there are no huge pages (or
    for a dtype outside the usual weight types, such as A1111's FP8 weights)."""
    if not HUGE_PAGES or dtype not in ARENA_DTYPES:
        return None
    itemsize = torch.empty((), dtype=dtype).element_size()
    return WeightArena(sum(aligned(math.prod(shape) * itemsize) for shape in shapes))
