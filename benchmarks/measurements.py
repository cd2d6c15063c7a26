"""The benchmark's measurements on one full-size UNet; each returns named figures."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file

from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.unet.key_table import FIRST_CONV_LDM, to_ldm_keys
from iclight_a1111.unet.merged_cache import MergedWeightsCache
from iclight_a1111.unet.offset_files import file_source
from iclight_a1111.unet.page_lock import PageLock

from .sampling_runs import generation_cycles
from .timing import memory_mib, reset_peak_rss, timed


@dataclass
class Bench:
    """The UNet under test, its random fc file and one UNet call's inputs."""

    unet: torch.nn.Module
    forward: Callable
    path: Path
    device: torch.device
    x: torch.Tensor
    t: torch.Tensor
    context: torch.Tensor
    concat: torch.Tensor

    def plain_step(self) -> Any:
        return self.forward(self.unet, self.x, self.t, self.context)

    def iclight(self, cache: MergedWeightsCache, placement: str = "keep", page_lock: PageLock | None = None) -> IcLightUnet:
        return IcLightUnet(CheckpointUnet(self.unet, self.forward), file_source(self.path), placement=placement, cache=cache,
                           page_lock=page_lock)


def cuda_peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


def reset_peaks(device: torch.device) -> None:
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def plain_memory(bench: Bench) -> dict[str, Any]:
    """Memory of plain steps, before IC-Light exists in this process."""
    bench.plain_step()
    reset_peaks(bench.device)
    bench.plain_step()
    return {"plain_rss": memory_mib("VmRSS"), "plain_peak": memory_mib("VmHWM"), "plain_vram": cuda_peak_mib(bench.device)}


def activations(bench: Bench, iclight: IcLightUnet, cache: MergedWeightsCache, runs: int) -> dict[str, Any]:
    """A first activation's peak RSS, a cached activation's time, and the memory of IC-Light steps with
    the weights swapped in from the cache."""
    reset_peak_rss()
    rss_before_first = memory_mib("VmRSS")
    iclight.activate()
    first_peak = memory_mib("VmHWM") - rss_before_first
    iclight.deactivate()
    cached = timed(iclight.activate, runs, bench.device, after=iclight.deactivate)
    reset_peaks(bench.device)
    iclight.activate()
    with iclight.concat_latents(bench.concat):
        iclight(bench.x, bench.t, bench.context)
    active = {"active_peak": memory_mib("VmHWM"), "active_vram": cuda_peak_mib(bench.device)}
    iclight.deactivate()
    return {"first_peak": first_peak, "cached": cached, **active, "idle_rss": memory_mib("VmRSS")}


def steps(bench: Bench, iclight: IcLightUnet, runs: int) -> dict[str, Any]:
    """Plain and IC-Light steps alternate, so both see the same machine conditions."""
    plain_steps, iclight_steps = [], []
    for _ in range(runs):
        plain_steps += timed(bench.plain_step, 1, bench.device)
        iclight.activate()
        with iclight.concat_latents(bench.concat):
            iclight_steps += timed(lambda: iclight(bench.x, bench.t, bench.context), 1, bench.device)
        iclight.deactivate()
    return {"plain_steps": plain_steps, "iclight_steps": iclight_steps}


def device_moves(bench: Bench, cache: MergedWeightsCache) -> dict[str, Any]:
    """Bytes moved between devices per generation (activation + deactivation), per placement."""
    moved, cycle_seconds = {}, {}
    for placement in ("keep", "park"):
        cache.clear()
        runner = bench.iclight(cache, placement)
        for label in ("first", "cached"):
            cycle_seconds[(placement, label)] = timed(lambda: (runner.activate(), runner.deactivate()), 1, bench.device)[0]
            moved[(placement, label)] = runner.moves.bytes
    per_generation = {placement: generation_cycles(bench.unet, bench.forward, bench.path, cache, placement, bench.device)
                      for placement in ("keep", "park")}
    return {"moved": moved, "cycle_seconds": cycle_seconds, "per_generation": per_generation}


def reference_approaches(bench: Bench, iclight: IcLightUnet, cache: MergedWeightsCache, runs: int) -> dict[str, Any]:
    """First activations alternating with the same offsets added in place (the bare floor: as read
    from the file, and already converted to the UNet's dtype), then the reference approaches. The
    floors edit the UNet's weights: they run last and nothing is measured on the UNet after them."""
    device = bench.device
    offsets = {k: v.to(device) for k, v in to_ldm_keys(load_file(str(bench.path)))[0].items()}
    params = dict(bench.unet.named_parameters())
    converted = {k: v.to(params[k].dtype) for k, v in offsets.items()}

    def add_in_place(added: dict[str, torch.Tensor]) -> None:
        for k, p in params.items():
            p.add_(added[k][:, :4] if k == FIRST_CONV_LDM else added[k])

    def full_copy_merge() -> None:
        base = bench.unet.state_dict()
        bench.unet.load_state_dict({k: base[k] + (offsets[k][:, :4] if k == FIRST_CONV_LDM else offsets[k]) for k in base})

    def reload_and_patch() -> None:
        loaded, _ = to_ldm_keys(load_file(str(bench.path)))
        for k, p in params.items():
            off = loaded[k].to(device)
            p.add_(off[:, :4] if k == FIRST_CONV_LDM else off)

    first, bare, bare_converted = [], [], []
    for _ in range(runs):
        first += timed(iclight.activate, 1, device, before=cache.clear, after=iclight.deactivate)
        bare += timed(lambda: add_in_place(offsets), 1, device)
        bare_converted += timed(lambda: add_in_place(converted), 1, device)
    reset_peak_rss()
    full_copy = timed(full_copy_merge, runs, device)
    full_copy_peak = memory_mib("VmHWM")
    reload = timed(reload_and_patch, runs, device)
    unet_mib = sum(p.numel() * p.element_size() for p in params.values()) / 2**20
    return {"first": first, "bare": bare, "bare_converted": bare_converted, "full_copy": full_copy,
            "full_copy_peak": full_copy_peak, "reload": reload, "unet_mib": unet_mib}
