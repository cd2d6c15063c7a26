"""Benchmark: IC-Light activation and per-step cost against plain A1111 and the reference approaches.

    python -m benchmarks.bench [--latent 64] [--batch 2] [--runs 3] [--e2e]

Builds a full-size SD 1.5 ldm UNet with random weights and a random fc file in the released layout
(diffusers keys, fp16) on the machine it runs on, then prints each figure as min / median over
`--runs` runs, and the ratios between figures measured in the same run; then the bytes moved between
devices per generation by each placement, and (on a GPU, or with --e2e) a whole sampling run of
25 steps at 512x640 with IC-Light against plain. Needs ldm (A1111's repositories, or the
`stable-diffusion-sdkit` package of the dev requirements).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from iclight_a1111.unet.merged_cache import MergedWeightsCache

from . import measurements, page_locking, report, traffic
from .random_models import fingerprint, random_unet, write_random_fc_file
from .sampling_runs import E2E_STEPS, end_to_end
from .timing import memory_mib


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent", type=int, default=64, help="latent side (64 = 512x512 pixels)")
    parser.add_argument("--batch", type=int, default=2, help="UNet batch (2 = one image with CFG)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--e2e", action="store_true", help="also time whole sampling runs without a GPU (slow)")
    parser.add_argument("--e2e-steps", type=int, default=E2E_STEPS, help="sampling steps of the end-to-end runs")
    return parser.parse_args()


def set_up(args: argparse.Namespace, workdir: Path) -> measurements.Bench:
    """A random full-size UNet on the fastest device here, its random fc file, one call's inputs."""
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"IC-Light benchmark on {name}: SD 1.5 UNet in {str(dtype).split('.')[-1]}, latent {args.latent}x{args.latent}, "
          f"batch {args.batch}, {args.runs} runs each")
    unet = random_unet(device, dtype)
    path = workdir / "iclight_sd15_fc.safetensors"
    write_random_fc_file(unet, path)
    print(f"random fc file: {path.stat().st_size / 2**30:.2f} GiB; UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M parameters")
    latent = (args.batch, 4, args.latent, args.latent)
    return measurements.Bench(
        unet, UNetModel.forward, path, device, x=torch.randn(*latent, device=device, dtype=dtype),
        t=torch.full((args.batch,), 500, device=device), context=torch.randn(args.batch, 77, 768, device=device, dtype=dtype),
        concat=torch.randn(*latent, device=device, dtype=dtype),
    )


def main() -> None:
    args = parse_args()
    torch.set_grad_enabled(False)
    workdir = Path(tempfile.mkdtemp(prefix="iclight-bench-"))
    try:
        figures = {"rss_start": memory_mib("VmRSS")}
        bench = set_up(args, workdir)
        figures.update(measurements.plain_memory(bench))
        before = fingerprint(bench.unet)
        cache = MergedWeightsCache()
        iclight = bench.iclight(cache)
        figures.update(measurements.activations(bench, iclight, cache, args.runs))
        figures.update(measurements.steps(bench, iclight, args.runs))
        figures.update(measurements.device_moves(bench, cache))
        cache.clear()
        figures.update(page_locking.parked_copy_locking(bench))
        figures.update(traffic.generation_memory(bench))
        figures.update(traffic.alternating_requests(bench, workdir))
        iclight = bench.iclight(cache)
        iclight.activate()
        iclight.deactivate()
        dtype = bench.x.dtype
        e2e = end_to_end(bench.unet, bench.forward, iclight, bench.device, dtype, args) if bench.device.type == "cuda" or args.e2e else None
        figures["identical"] = fingerprint(bench.unet) == before
        figures.update(measurements.reference_approaches(bench, iclight, cache, args.runs))
        report.print_times(figures)
        report.print_memory(figures, bench.device.type)
        report.print_moves(figures, 3 * args.runs + 6, bench.device.type)
        report.print_end_to_end(e2e, args)
        report.print_traffic(figures)
        page_locking.print_locking(figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
