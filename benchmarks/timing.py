"""Timing and memory readings for the benchmark: side by side, synchronised with the device."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], runs: int, device: torch.device, before: Callable[[], None] = lambda: None,
          after: Callable[[], None] = lambda: None) -> list[float]:
    """Seconds of `fn` per run; `before` and `after` run untimed around each."""
    times = []
    for _ in range(runs):
        before()
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
        after()
    return times


def summary(times: list[float]) -> str:
    return f"min {min(times):8.4f} s  median {statistics.median(times):8.4f} s"


def memory_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def verdict(value: float, target: float, unit: str = "", decimals: int = 2) -> str:
    """Whether `value`, as printed with `decimals`, is within `target`."""
    met = "met" if round(value, decimals) <= target else f"missed by {value / target:.2f}x"
    return f"target <= {target:g}{unit}: {met}"
