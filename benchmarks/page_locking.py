"""On a CUDA machine: a parked copy's RAM is page-locked through its own mapping and given back whole on
release. Without CUDA there is nothing to lock: the check says so."""
from __future__ import annotations

import gc
from typing import Any, Iterable

import torch

from iclight_a1111.unet.merged_cache import MergedWeightsCache
from iclight_a1111.unet.page_lock import page_lock_for

from .timing import memory_mib, timed


def parked_copy_locking(bench: Any) -> dict[str, Any]:
    """RSS before a parked activation, whether its merged weights are page-locked, the time of its
    transfers to the GPU, and RSS once the copy is released."""
    if bench.device.type != "cuda":
        return {}
    cache = MergedWeightsCache()
    gc.collect()
    rss_before = memory_mib("VmRSS")
    runner = bench.iclight(cache, "park", page_lock=page_lock_for(bench.device))
    runner.activate()
    runner.deactivate()
    locked, gbps = transfers(cache.weights.values(), bench.device)
    del runner
    cache.clear()
    gc.collect()
    torch.cuda.empty_cache()
    return {"lock_rss_before": rss_before, "lock_locked": locked, "lock_gbps": gbps,
            "lock_rss_after": memory_mib("VmRSS")}


def transfers(weights: Iterable[torch.Tensor], device: torch.device) -> tuple[bool, float]:
    """Whether every weight is page-locked, and their transfer rate to `device` in GB/s (best of 3)."""
    weights = list(weights)
    nbytes = sum(t.numel() * t.element_size() for t in weights)
    seconds = timed(lambda: [t.to(device) for t in weights], 3, device)
    return all(t.is_pinned() for t in weights if t.numel()), nbytes / min(seconds) / 1e9


def print_locking(f: dict[str, Any]) -> None:
    if "lock_locked" not in f:
        print("11. parked copy page-locked: no CUDA device here (nothing to lock)")
        return
    print(f"11. parked copy page-locked in its own mapping: {'yes' if f['lock_locked'] else 'NO'}; transfers to the GPU "
          f"{f['lock_gbps']:.1f} GB/s; RSS before {f['lock_rss_before']:.0f} MiB, after release "
          f"{f['lock_rss_after']:.0f} MiB ({f['lock_rss_after'] - f['lock_rss_before']:+.0f} MiB)")
