"""RAM for one merged UNet copy: a single anonymous mapping, on transparent huge pages where Linux has them.

A first activation writes a whole UNet copy into memory the process never touched. With 4 KiB pages
that is about 800 000 page faults for an fp32 SD 1.5 UNet, which cost more than the additions. A
mapping advised for huge pages faults 2 MiB at a time. A parked copy's mapping is also what gets
page-locked for transfers to the GPU (`page_lock`). When the last tensor made in it is freed, its
pages are unlocked and it is unmapped: a released copy goes straight back to the system.
"""
from __future__ import annotations

import ctypes
import math
import mmap
from typing import Iterable

import torch

from .page_lock import PageLock

ALIGNMENT = 64  # bytes: every tensor starts on a cache line, as the C allocator would place it
HUGE_PAGES = hasattr(mmap, "MADV_HUGEPAGE")  # Linux; elsewhere torch's own allocator serves the copy
ARENA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


def anonymous_mapping(nbytes: int) -> mmap.mmap:
    """Fresh zeroed memory of its own, advised for huge pages where the kernel has them."""
    if not hasattr(mmap, "MAP_ANONYMOUS"):  # Windows: an anonymous mapping has no flags
        return mmap.mmap(-1, nbytes)
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if HUGE_PAGES:
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # a kernel built without transparent huge pages: 4 KiB pages, slower to fill
            pass
    return mapping


class ArenaMemory:
    """The mapping, and its end: unlocked if it was locked, then unmapped, once nothing refers to it.

    Tensors refer to it through a ctypes view of its address (which holds no export of the mapping), so
    the mapping can be closed, in that order, when the last tensor and the view are gone."""

    def __init__(self, nbytes: int) -> None:
        self.mapping = anonymous_mapping(nbytes)
        view = ctypes.c_char.from_buffer(self.mapping)
        self.address = ctypes.addressof(view)
        del view  # releases the export: the mapping may be closed later
        self.nbytes = nbytes
        self.page_lock: PageLock | None = None

    def lock(self, page_lock: PageLock) -> bool:
        if self.page_lock is None and page_lock.lock(self.address, self.nbytes):
            self.page_lock = page_lock
        return self.page_lock is not None

    def __del__(self) -> None:
        if self.page_lock is not None:
            self.page_lock.unlock(self.address)
        self.mapping.close()


class WeightArena:
    """Tensors carved one after another out of one mapping sized for all of them."""

    def __init__(self, nbytes: int) -> None:
        self.memory = ArenaMemory(max(nbytes, ALIGNMENT))
        region = type("ArenaRegion", (ctypes.c_char * self.memory.nbytes,), {})
        self.buffer = region.from_address(self.memory.address)
        self.buffer.memory = self.memory  # each tensor keeps the buffer, the buffer keeps the memory
        self.used = 0

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor in the arena."""
        numel = math.prod(shape)
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if numel == 0:
            return torch.empty(shape, dtype=dtype)
        if self.used + nbytes > self.memory.nbytes:
            raise MemoryError(f"weight arena of {self.memory.nbytes} bytes is full")
        tensor = torch.frombuffer(self.buffer, dtype=dtype, count=numel, offset=self.used).view(shape)
        self.used += aligned(nbytes)
        return tensor

    def lock(self, page_lock: PageLock) -> bool:
        """Lock the arena's pages for transfers to a device (until its last tensor is freed); whether they are."""
        return self.memory.lock(page_lock)


def arena_for(shapes: Iterable[tuple[int, ...]], dtype: torch.dtype, page_lock: PageLock | None = None) -> WeightArena | None:
    """An arena holding a tensor of `dtype` for each shape, where it pays: on huge pages, or to be locked by
    `page_lock`. None for a dtype outside the usual weight types (such as A1111's FP8 weights)."""
    if not (HUGE_PAGES or page_lock is not None) or dtype not in ARENA_DTYPES:
        return None
    itemsize = torch.empty((), dtype=dtype).element_size()
    return WeightArena(sum(aligned(math.prod(shape) * itemsize) for shape in shapes))
