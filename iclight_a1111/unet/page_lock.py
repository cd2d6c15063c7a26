"""Page-locked RAM for parked merged copies: the mapping they lie in registered with CUDA, and unregistered
when the copy is freed.

A weight copied to the GPU from page-locked ("pinned") memory goes by DMA at full bus speed; from ordinary
memory the driver stages it. torch's own pinning (`Tensor.pin_memory`) copies into its caching host allocator, which
keeps the pages locked after the tensor is freed (torch 2.1 has no way to empty it): every parked copy
released would stay locked RAM. Registering the copy's own mapping (`cudaHostRegister`) locks exactly its
pages, and `cudaHostUnregister` gives them back when the last tensor in it is freed (`weight_arena`).
"""
from __future__ import annotations

from typing import Protocol

import torch


class PageLock(Protocol):
    """Locks a range of this process's memory for fast transfers to a device, and unlocks it."""

    def lock(self, address: int, nbytes: int) -> bool: ...
    def unlock(self, address: int) -> None: ...


class CudaPageLock:
    """`cudaHostRegister` / `cudaHostUnregister`, through torch's bindings of the CUDA runtime."""

    def lock(self, address: int, nbytes: int) -> bool:
        """Whether the range is now registered; False (the copy works unpinned) where CUDA refuses it."""
        try:
            return int(torch.cuda.cudart().cudaHostRegister(address, nbytes, 0)) == 0
        except Exception:
            return False

    def unlock(self, address: int) -> None:
        torch.cuda.cudart().cudaHostUnregister(address)


def page_lock_for(device: torch.device | str) -> PageLock | None:
    """How to lock RAM for transfers to `device`: CUDA's registration for a CUDA device, else none."""
    return CudaPageLock() if torch.device(device).type == "cuda" and torch.cuda.is_available() else None
