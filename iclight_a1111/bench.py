"""Benchmark: IC-Light activation and per-step cost against plain A1111 and the reference approaches.

    python -m iclight_a1111.bench [--latent 64] [--batch 2] [--runs 3] [--e2e]

Builds a full-size SD 1.5 ldm UNet with random weights and a random fc file in the released layout
(diffusers keys, fp16) on the machine it runs on, then prints each figure as min / median over
`--runs` runs, and the ratios between figures measured in the same run; then the bytes moved between
devices per generation by each placement, and (on a GPU, or with --e2e) a whole sampling run of
25 steps at 512x640 with IC-Light against plain. Needs ldm (A1111's repositories, or the
`stable-diffusion-sdkit` package of the dev requirements).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from .concat_unet import CheckpointUnet, IcLightUnet
from .key_table import FIRST_CONV_LDM, diffusers_to_ldm, to_ldm_keys
from .merged_cache import MergedWeightsCache
from .offset_files import file_source

SD15_UNET = dict(
    image_size=64, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
    num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
    transformer_depth=1, context_dim=768, legacy=False,
)


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


def fingerprint(unet: torch.nn.Module) -> list[tuple]:
    return [(n, id(p), p.dtype, p.device, p.detach().float().sum().item(), p.detach().float().abs().max().item())
            for n, p in unet.named_parameters()]


def random_unet(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    unet = UNetModel(**SD15_UNET).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    unet.dtype = dtype
    return unet.to(device, dtype)


def write_random_fc_file(unet: torch.nn.Module, path: Path) -> None:
    """Random offsets for every key, first conv widened to 8 inputs, diffusers names, fp16: as released."""
    g = torch.Generator().manual_seed(1)
    ldm_to_diffusers = {v: k for k, v in diffusers_to_ldm().items()}
    tensors = {}
    for name, p in unet.named_parameters():
        shape = (p.shape[0], 8, *p.shape[2:]) if name == FIRST_CONV_LDM else tuple(p.shape)
        tensors[ldm_to_diffusers[name]] = (torch.randn(shape, generator=g) * 0.01).half()
    save_file(tensors, str(path))


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


def verdict(value: float, target: float, unit: str = "") -> str:
    met = "met" if value <= target else f"missed by {value / target:.2f}x"
    return f"target <= {target:g}{unit}: {met}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent", type=int, default=64, help="latent side (64 = 512x512 pixels)")
    parser.add_argument("--batch", type=int, default=2, help="UNet batch (2 = one image with CFG)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--e2e", action="store_true", help="also time whole sampling runs without a GPU (slow)")
    parser.add_argument("--e2e-steps", type=int, default=E2E_STEPS, help="sampling steps of the end-to-end runs")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"IC-Light benchmark on {name}: SD 1.5 UNet in {str(dtype).split('.')[-1]}, latent {args.latent}x{args.latent}, "
          f"batch {args.batch}, {args.runs} runs each")

    rss_start = memory_mib("VmRSS")
    unet = random_unet(device, dtype)
    forward = UNetModel.forward
    workdir = Path(tempfile.mkdtemp(prefix="iclight-bench-"))
    path = workdir / "iclight_sd15_fc.safetensors"
    write_random_fc_file(unet, path)
    print(f"random fc file: {path.stat().st_size / 2**30:.2f} GiB; UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M parameters")

    x = torch.randn(args.batch, 4, args.latent, args.latent, device=device, dtype=dtype)
    t = torch.full((args.batch,), 500, device=device)
    context = torch.randn(args.batch, 77, 768, device=device, dtype=dtype)
    concat = torch.randn(args.batch, 4, args.latent, args.latent, device=device, dtype=dtype)

    # 5: memory of plain steps, before IC-Light exists in this process.
    forward(unet, x, t, context)
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    forward(unet, x, t, context)
    plain_rss, plain_peak = memory_mib("VmRSS"), memory_mib("VmHWM")
    plain_vram = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None

    before = fingerprint(unet)
    cache = MergedWeightsCache()
    iclight = IcLightUnet(CheckpointUnet(unet, forward), file_source(path), placement="keep", cache=cache)

    # 5: peak RSS of a first activation (the file is read one tensor at a time while merging).
    reset_peak_rss()
    rss_before_first = memory_mib("VmRSS")
    iclight.activate()
    first_peak = memory_mib("VmHWM") - rss_before_first
    iclight.deactivate()

    # 2: first activation (read file, convert keys, check, merge, swap in), cache emptied each run.
    first = timed(iclight.activate, args.runs, device, before=cache.clear, after=iclight.deactivate)
    # 3: re-activation from the cache.
    cached = timed(iclight.activate, args.runs, device, after=iclight.deactivate)

    # 5: memory of IC-Light steps (weights swapped in from the cache).
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    iclight.activate()
    with iclight.concat_latents(concat):
        iclight(x, t, context)
    active_peak = memory_mib("VmHWM")
    active_vram = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    iclight.deactivate()
    idle_rss = memory_mib("VmRSS")

    # 1: plain and IC-Light steps alternate, so both see the same machine conditions.
    plain_steps, iclight_steps = [], []
    for _ in range(args.runs):
        plain_steps += timed(lambda: forward(unet, x, t, context), 1, device)
        iclight.activate()
        with iclight.concat_latents(concat):
            iclight_steps += timed(lambda: iclight(x, t, context), 1, device)
        iclight.deactivate()

    # 7: bytes moved between devices per generation (activation + deactivation), as A1111 runs it.
    moved, cycle_seconds = {}, {}
    for placement in ("keep", "park"):
        cache.clear()
        runner = IcLightUnet(CheckpointUnet(unet, forward), file_source(path), placement=placement, cache=cache)
        for label in ("first", "cached"):
            cycle_seconds[(placement, label)] = timed(lambda: (runner.activate(), runner.deactivate()), 1, device)[0]
            moved[(placement, label)] = runner.moves.bytes
    per_generation = {placement: generation_cycles(unet, forward, path, cache, placement, device)
                      for placement in ("keep", "park")}
    iclight = IcLightUnet(CheckpointUnet(unet, forward), file_source(path), placement="keep", cache=cache)
    iclight.activate()
    iclight.deactivate()

    # 8: whole sampling runs, plain and IC-Light (activation and deactivation included).
    e2e = end_to_end(unet, forward, iclight, device, dtype, args) if device.type == "cuda" or args.e2e else None

    # 6: the checkpoint after all those cycles.
    identical = fingerprint(unet) == before

    # 2 (bare pass) and 4: the same offsets added in place, and the reference approaches. These edit
    # the UNet's weights; they run last and nothing is measured on the UNet after them.
    offsets = {k: v.to(device) for k, v in to_ldm_keys(load_file(str(path)))[0].items()}
    params = dict(unet.named_parameters())

    def bare_add() -> None:
        for k, p in params.items():
            p.add_(offsets[k][:, :4] if k == FIRST_CONV_LDM else offsets[k])

    def full_copy_merge() -> None:
        base = unet.state_dict()
        merged = {k: base[k] + (offsets[k][:, :4] if k == FIRST_CONV_LDM else offsets[k]) for k in base}
        unet.load_state_dict(merged)

    def reload_and_patch() -> None:
        loaded, _ = to_ldm_keys(load_file(str(path)))
        for k, p in params.items():
            off = loaded[k].to(device)
            p.add_(off[:, :4] if k == FIRST_CONV_LDM else off)

    bare = timed(bare_add, args.runs, device)
    reset_peak_rss()
    full_copy = timed(full_copy_merge, args.runs, device)
    full_copy_peak = memory_mib("VmHWM")
    reload = timed(reload_and_patch, args.runs, device)

    med = statistics.median
    step_ratio = med(iclight_steps) / med(plain_steps)
    first_ratio = med(first) / med(bare)
    cached_pct = 100 * med(cached) / med(first)
    print()
    print(f"1. per-step UNet time   plain    {summary(plain_steps)}")
    print(f"                        IC-Light {summary(iclight_steps)}   ratio {step_ratio:.3f} ({verdict(step_ratio, 1.02)})")
    print(f"2. first activation     IC-Light {summary(first)}   (read file + convert + check + merge + swap in)")
    print(f"                        bare add {summary(bare)}   ratio {first_ratio:.2f} ({verdict(first_ratio, 1.5)})")
    print(f"3. cached re-activation IC-Light {summary(cached)}   {cached_pct:.2f}% of first ({verdict(cached_pct, 5, '%')})")
    print(f"4. reference approaches full-copy merge + load_state_dict {summary(full_copy)}")
    print(f"                        reload file + patch per generation {summary(reload)}")
    print(f"                        per generation, cached IC-Light is {med(full_copy) / med(cached):.1f}x faster than the "
          f"full copy and {med(reload) / med(cached):.1f}x faster than reload-and-patch")
    unet_mib = sum(p.numel() * p.element_size() for p in params.values()) / 2**20
    print(f"5. memory (one UNet = {unet_mib:.0f} MiB): plain RSS {plain_rss - rss_start:.0f} MiB over start, "
          f"peak {plain_peak - rss_start:.0f} MiB")
    extra_unets = (active_peak - plain_peak) / unet_mib
    print(f"                        IC-Light active: peak RSS {active_peak - plain_peak:+.0f} MiB over plain peak "
          f"= {extra_unets:.2f} UNet copies ({verdict(extra_unets, 1, ' copy')})")
    print(f"                        IC-Light idle with cache: RSS {idle_rss - plain_rss:+.0f} MiB over plain")
    print(f"                        full-copy merge peak RSS {full_copy_peak - plain_peak:+.0f} MiB over plain peak")
    if device.type == "cuda":
        print(f"                        peak CUDA memory: plain {plain_vram:.0f} MiB, IC-Light {active_vram:.0f} MiB "
              f"({active_vram - plain_vram:+.0f} MiB; the checkpoint UNet itself moves to RAM while IC-Light is "
              f"active in A1111, so the GPU holds one UNet either way)")
    else:
        print("                        peak CUDA memory: no GPU present")
    print(f"                        first activation: peak RSS {first_peak:+.0f} MiB over the RSS before it "
          f"({first_peak / unet_mib:.2f} UNet copies)")
    print(f"6. checkpoint bit-identical after {3 * args.runs + 6} activate/deactivate cycles: {'pass' if identical else 'FAIL'}")
    gib = 2**30
    print(f"7. one generation's activation + deactivation, device moves included, the merge's too: offsets to the "
          f"device, checkpoint weights to RAM when parked ({device.type}; on a CPU nothing can move):")
    for placement, note in (("keep", " (target after the first: 0)"), ("park", "")):
        print(f"                        {placement}: first {cycle_seconds[(placement, 'first')]:.3f} s moving "
              f"{moved[(placement, 'first')] / gib:.2f} GiB, cached {cycle_seconds[(placement, 'cached')]:.3f} s moving "
              f"{moved[(placement, 'cached')] / gib:.2f} GiB{note}")
    for placement, figures in per_generation.items():
        print(f"                        batch count {BATCH_COUNT}, {placement}: " + "; ".join(
            f"{label} {n} activation(s), {moved / gib:.2f} GiB moved, {seconds:.3f} s"
            for label, (n, moved, seconds) in figures.items()))
    print(f"                        for comparison, A1111's sd_unet.apply_unet round trip (avoided): 3 UNet "
          f"copies = {3 * unet_mib / 1024:.2f} GiB per generation on a GPU at this dtype")
    if e2e is None:
        print("8. end-to-end sampling: no GPU present (run with --e2e to measure it on the CPU)")
    else:
        (plain_s, plain_mem), (relit_s, relit_mem) = e2e
        print(f"8. end-to-end sampling {args.e2e_steps} steps at {E2E_SIZE[0]}x{E2E_SIZE[1]} (CFG batch 2): plain "
              f"{plain_s:.2f} s, IC-Light {relit_s:.2f} s, ratio {relit_s / plain_s:.3f} ({verdict(relit_s / plain_s, 1.05)})")
        if plain_mem is not None:
            print(f"                        peak VRAM: plain {plain_mem:.0f} MiB, IC-Light {relit_mem:.0f} MiB")
    os.remove(path)
    workdir.rmdir()


if __name__ == "__main__":
    main()
