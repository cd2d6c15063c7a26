"""The benchmark's printout: each figure, and the ratios between figures measured in the same run."""
from __future__ import annotations

import argparse
import statistics
from typing import Any

from .sampling_runs import BATCH_COUNT, E2E_SIZE
from .timing import summary, verdict

GIB = 2**30


def print_times(f: dict[str, Any]) -> None:
    med = statistics.median
    step_ratio = med(f["iclight_steps"]) / med(f["plain_steps"])
    first_ratio = med(f["first"]) / med(f["bare"])
    cached_pct = 100 * med(f["cached"]) / med(f["first"])
    print()
    print(f"1. per-step UNet time   plain    {summary(f['plain_steps'])}")
    print(f"                        IC-Light {summary(f['iclight_steps'])}   ratio {step_ratio:.3f} ({verdict(step_ratio, 1.02, decimals=3)})")
    print(f"2. first activation     IC-Light {summary(f['first'])}   (read file + convert + check + merge + swap in)")
    print(f"                        bare add {summary(f['bare'])}   ratio {first_ratio:.2f} ({verdict(first_ratio, 1.2)})")
    print("                        (bare add: param.add_(offset) in place, the file's offsets already in RAM, alternating "
          "with the first activations)")
    print(f"                        bare add of offsets already in the UNet's dtype {summary(f['bare_converted'])}   "
          f"ratio {med(f['first']) / med(f['bare_converted']):.2f} (no file read, no conversion: below the floor)")
    print(f"3. cached re-activation IC-Light {summary(f['cached'])}   {cached_pct:.2f}% of first ({verdict(cached_pct, 1, '%')})")
    print(f"4. reference approaches full-copy merge + load_state_dict {summary(f['full_copy'])}")
    print(f"                        reload file + patch per generation {summary(f['reload'])}")
    print(f"                        per generation, cached IC-Light is {med(f['full_copy']) / med(f['cached']):.1f}x faster "
          f"than the full copy and {med(f['reload']) / med(f['cached']):.1f}x faster than reload-and-patch")


def print_memory(f: dict[str, Any], device_type: str) -> None:
    unet_mib, plain_peak = f["unet_mib"], f["plain_peak"]
    print(f"5. memory (one UNet = {unet_mib:.0f} MiB): plain RSS {f['plain_rss'] - f['rss_start']:.0f} MiB over start, "
          f"peak {plain_peak - f['rss_start']:.0f} MiB")
    extra_unets = (f["active_peak"] - plain_peak) / unet_mib
    print(f"                        IC-Light active: peak RSS {f['active_peak'] - plain_peak:+.0f} MiB over plain peak "
          f"= {extra_unets:.2f} UNet copies ({verdict(extra_unets, 1, ' copy')})")
    print(f"                        IC-Light idle with cache: RSS {f['idle_rss'] - f['plain_rss']:+.0f} MiB over plain")
    print(f"                        full-copy merge peak RSS {f['full_copy_peak'] - plain_peak:+.0f} MiB over plain peak")
    if device_type == "cuda":
        plain_vram, active_vram = f["plain_vram"], f["active_vram"]
        print(f"                        peak CUDA memory: plain {plain_vram:.0f} MiB, IC-Light {active_vram:.0f} MiB "
              f"({active_vram - plain_vram:+.0f} MiB; the checkpoint UNet itself moves to RAM while IC-Light is "
              f"active in A1111, so the GPU holds one UNet either way)")
    else:
        print("                        peak CUDA memory: no GPU present")
    print(f"                        first activation: peak RSS {f['first_peak']:+.0f} MiB over the RSS before it "
          f"({f['first_peak'] / unet_mib:.2f} UNet copies)")


def print_moves(f: dict[str, Any], cycles: int, device_type: str) -> None:
    print(f"6. checkpoint bit-identical after {cycles} activate/deactivate cycles: {'pass' if f['identical'] else 'FAIL'}")
    print(f"7. one generation's activation + deactivation, device moves included, the merge's too: offsets to the "
          f"device, checkpoint weights to RAM when parked ({device_type}; on a CPU nothing can move):")
    moved, seconds = f["moved"], f["cycle_seconds"]
    for placement, note in (("keep", " (target after the first: 0)"), ("park", "")):
        print(f"                        {placement}: first {seconds[(placement, 'first')]:.3f} s moving "
              f"{moved[(placement, 'first')] / GIB:.2f} GiB, cached {seconds[(placement, 'cached')]:.3f} s moving "
              f"{moved[(placement, 'cached')] / GIB:.2f} GiB{note}")
    for placement, figures in f["per_generation"].items():
        print(f"                        batch count {BATCH_COUNT}, {placement}: " + "; ".join(
            f"{label} {n} activation(s), {nbytes / GIB:.2f} GiB moved, {s:.3f} s"
            for label, (n, nbytes, s) in figures.items()))
    print(f"                        for comparison, A1111's sd_unet.apply_unet round trip (avoided): 3 UNet "
          f"copies = {3 * f['unet_mib'] / 1024:.2f} GiB per generation on a GPU at this dtype")


def print_end_to_end(e2e: Any, args: argparse.Namespace) -> None:
    if e2e is None:
        print("8. end-to-end sampling: no GPU present (run with --e2e to measure it on the CPU)")
        return
    (plain_s, plain_mem), (relit_s, relit_mem) = e2e
    print(f"8. end-to-end sampling {args.e2e_steps} steps at {E2E_SIZE[0]}x{E2E_SIZE[1]} (CFG batch 2): plain "
          f"{plain_s:.2f} s, IC-Light {relit_s:.2f} s, ratio {relit_s / plain_s:.3f} ({verdict(relit_s / plain_s, 1.05, decimals=3)})")
    if plain_mem is not None:
        print(f"                        peak VRAM: plain {plain_mem:.0f} MiB, IC-Light {relit_mem:.0f} MiB")


def print_traffic(f: dict[str, Any]) -> None:
    reads = f["alternating_reads"]
    print("9. 8 requests alternating fc and fbc (one merge per file read): " + "; ".join(
        f"{copies} cop{'y' if copies == 1 else 'ies'} kept: {n} file reads and merges" for copies, n in reads.items())
        + f" ({verdict(reads[max(reads)], 2)})")
    rows = f["generation_memory"]
    for label in ("first", "cached"):
        before, peak, after = rows[label]
        print(f"10. {label} generation RSS: before {before:.0f} MiB, peak {peak:.0f} MiB ({peak - before:+.0f}), "
              f"after {after:.0f} MiB ({after - before:+.0f})")
    kept, released = rows["release"]
    print(f"    merged copy released: RSS {kept:.0f} MiB with the memory still in the allocator, {released:.0f} MiB "
          f"once given back ({released - rows['first'][0]:+.0f} MiB against before the first generation)")
