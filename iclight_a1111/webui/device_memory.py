"""Free memory where merged copies would live, per backend A1111 runs on; None where there is no way to know.

- CUDA (and ROCm, which torch names cuda): the driver's free memory plus the blocks torch's allocator holds free.
- XPU (Intel): the same through `torch.xpu` where that torch (or Intel's extension) has `mem_get_info`.
- MPS (Apple silicon) and the CPU: one memory, the system's RAM available without swapping.
- DirectML (`privateuseone`) and anything else: unknown. The caller then keeps no copy on the device.
"""
from __future__ import annotations

import torch

SHARES_RAM = ("cpu", "mps")  # devices whose memory is the system's RAM


def free_ram() -> int | None:
    """Bytes of RAM available to this process without swapping; None when unknown."""
    try:
        import psutil  # A1111 depends on it
    except ImportError:
        return None
    return psutil.virtual_memory().available


def free_device_memory(device: torch.device) -> int | None:
    """Bytes a new copy on `device` can take now; None when the backend cannot say."""
    if device.type in SHARES_RAM:
        return free_ram()
    backend = getattr(torch, device.type, None)
    mem_get_info = getattr(backend, "mem_get_info", None)
    if device.type not in ("cuda", "xpu") or mem_get_info is None:
        return None
    try:
        free, _ = mem_get_info(device)
    except (RuntimeError, AssertionError):  # no such device, or the build lacks the backend
        return None
    reserved, allocated = getattr(backend, "memory_reserved", None), getattr(backend, "memory_allocated", None)
    if reserved is not None and allocated is not None:
        free += reserved(device) - allocated(device)  # blocks torch's allocator holds free
    return free
