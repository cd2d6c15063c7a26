"""Whole sampling runs and whole generations' activations, as A1111 runs them."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch

from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.unet.merged_cache import MergedWeightsCache
from iclight_a1111.unet.offset_files import file_source

from .timing import sync, timed

E2E_STEPS = 25  # the reference's steps
E2E_SIZE = (512, 640)


def end_to_end(unet: torch.nn.Module, forward: Callable, iclight: IcLightUnet, device: torch.device, dtype: torch.dtype,
               args: argparse.Namespace) -> tuple[tuple[float, float | None], tuple[float, float | None]]:
    """Seconds and peak CUDA MiB of an Euler run with CFG (batch 2) at 512x640, plain and with
    IC-Light (cached activation and deactivation included, as one A1111 generation has them)."""
    g = torch.Generator().manual_seed(2)
    shape = (2, 4, E2E_SIZE[1] // 8, E2E_SIZE[0] // 8)
    x0 = torch.randn(shape, generator=g).to(device, dtype)
    concat = torch.randn(shape, generator=g).to(device, dtype)
    context = torch.randn(2, 77, 768, generator=g).to(device, dtype)
    steps = args.e2e_steps
    sigmas = torch.linspace(14.6, 0.03, steps).tolist() + [0.0]

    def sample() -> None:
        x = x0 * sigmas[0]
        for i in range(steps):
            t = torch.full((2,), int(999 * (steps - i) / steps), device=device)
            eps = forward(unet, x / (sigmas[i] ** 2 + 1) ** 0.5, t, context)
            x = x + eps * (sigmas[i + 1] - sigmas[i])

    def relit() -> None:
        iclight.activate()
        try:
            with iclight.concat_latents(concat):
                sample()
        finally:
            iclight.deactivate()

    results = []
    for run in (sample, relit):
        run()  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = min(timed(run, max(1, args.runs - 1), device))
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
        results.append((seconds, peak))
    return results[0], results[1]


BATCH_COUNT = 4


def generation_cycles(unet: torch.nn.Module, forward: Callable, path: Path, cache: MergedWeightsCache,
                      placement: str, device: torch.device) -> dict[str, tuple[int, int, float]]:
    """Activation overhead of one generation of batch count 4 with a warm cache: IC-Light activated
    once for the generation (as it runs now) against once per batch. Per way: (activations, bytes
    moved, seconds)."""
    runner = IcLightUnet(CheckpointUnet(unet, forward), file_source(path), placement=placement, cache=cache)
    runner.activate()
    runner.deactivate()  # warms the cache for this placement
    figures = {}
    for label, cycles in (("per generation", 1), ("per batch", BATCH_COUNT)):
        moved, start = 0, time.perf_counter()
        for _ in range(cycles):
            runner.activate()
            runner.deactivate()
            moved += runner.moves.bytes
        sync(device)
        figures[label] = (cycles, moved, time.perf_counter() - start)
    return figures
