"""Figures of issue-level traffic: requests alternating fc and fbc, and the memory a generation leaves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.unet.freed_memory import give_back_freed_memory
from iclight_a1111.unet.merged_cache import MergedWeightsCache
from iclight_a1111.unet.offset_files import OffsetSource, file_source

from .measurements import Bench
from .random_models import write_random_fc_file
from .timing import memory_mib, reset_peak_rss

REQUESTS = 8
COPIES = 2


def counted_source(path: Path, reads: list[str]) -> OffsetSource:
    source = file_source(path)

    def load() -> Any:
        reads.append(path.name)
        return source.load()

    return OffsetSource(source.name, source.identity, load)


def alternating_requests(bench: Bench, workdir: Path) -> dict[str, Any]:
    """File reads and merges for 8 requests alternating fc and fbc, with one and with two copies kept."""
    fbc = workdir / "iclight_sd15_fbc.safetensors"
    write_random_fc_file(bench.unet, fbc, in_channels=12)
    figures = {}
    for copies in (1, COPIES):
        reads: list[str] = []
        cache = MergedWeightsCache(limit=lambda copies=copies: copies)
        for path in [bench.path, fbc] * (REQUESTS // 2):
            runner = IcLightUnet(CheckpointUnet(bench.unet, bench.forward), counted_source(path, reads), cache=cache)
            runner.activate()
            runner.deactivate()
        figures[copies] = len(reads)
        cache.clear()
        give_back_freed_memory()
    fbc.unlink()
    return {"alternating_reads": figures}


def generation_memory(bench: Bench) -> dict[str, Any]:
    """RSS before, at peak and after the merged copy is released, for a first and a cached generation
    (activation, one IC-Light step, deactivation), as the webui releases it (cache cleared, memory given back)."""
    cache = MergedWeightsCache()
    give_back_freed_memory()  # start from what the process holds, not what its allocator kept of earlier runs
    rows = {}
    for label in ("first", "cached"):
        before = memory_mib("VmRSS")
        reset_peak_rss()
        runner = bench.iclight(cache)
        runner.activate()
        with runner.concat_latents(bench.concat):
            runner(bench.x, bench.t, bench.context)
        runner.deactivate()
        rows[label] = [before, memory_mib("VmHWM"), memory_mib("VmRSS")]
    cache.clear()
    kept = memory_mib("VmRSS")
    give_back_freed_memory()
    rows["release"] = [kept, memory_mib("VmRSS")]
    return {"generation_memory": rows}
