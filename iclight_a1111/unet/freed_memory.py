"""Freed memory given back to the system.

glibc serves allocations below its adaptive mmap threshold (up to 32 MiB, most UNet weights) from its
arenas and keeps them there when they are freed: after a merged UNet copy is released, the process
would go on holding its size as resident memory. `malloc_trim(0)` returns the free pages of every
arena. Other C libraries (Windows, macOS, musl) give large blocks back on their own: nothing to do.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Callable


def find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = find_malloc_trim()


def give_back_freed_memory() -> bool:
    """Return the free pages of the C allocator's arenas to the system; whether there was a way to."""
    if MALLOC_TRIM is None:
        return False
    MALLOC_TRIM(0)
    return True
