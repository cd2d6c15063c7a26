"""The merged-weights cache in A1111: its settings, where the checkpoint's UNet waits, when the cache goes."""
from __future__ import annotations

from typing import Any

import torch
from modules import devices, shared

from ..unet.concat_unet import Placement
from ..unet.freed_memory import give_back_freed_memory
from ..unet.merged_cache import MergedWeightsCache
from .device_memory import SHARES_RAM, free_device_memory

CACHE_OPTION = "iclight_cache_merged_weights"
COPIES_OPTION = "iclight_merged_copies"
COPIES_CHOICES = ["Automatic", "1", "2", "3", "4"]
AUTOMATIC_COPIES = 4  # Automatic: as many as fit, at most this many (fc, fcon, fbc and one more)
PLACEMENT_OPTION = "iclight_checkpoint_placement"
PLACEMENT_CHOICES = {"Automatic": None, "Keep on GPU": "keep", "Park in RAM": "park"}
VRAM_HEADROOM = 2 * 2**30  # left free for sampling at about 512x640 after a second UNet
RAM_HEADROOM = 4 * 2**30  # left free in RAM for a generation (decoding, the webui, the background remover)


def copies_limit() -> int:
    """How many merged copies may be kept: the setting, or with Automatic as many as fit."""
    setting = str(shared.opts.data.get(COPIES_OPTION, "Automatic"))
    return int(setting) if setting.isdigit() else AUTOMATIC_COPIES


def has_room(nbytes: int, device: torch.device) -> bool:
    """Whether one more copy of `nbytes` on `device` leaves a generation the memory it needs; never where
    the free memory is unknown (then only the copy in use is kept)."""
    free = free_device_memory(device)
    headroom = RAM_HEADROOM if device.type in SHARES_RAM else VRAM_HEADROOM
    return free is not None and free >= nbytes + headroom


MERGED_WEIGHTS = MergedWeightsCache(limit=copies_limit, has_room=has_room)


def model_in_use() -> torch.nn.Module | None:
    """The UNet of the checkpoint A1111 uses now (None when none is loaded, or the model has no
    `model.diffusion_model`): everything of IC-Light is keyed to this object."""
    return getattr(getattr(shared.sd_model, "model", None), "diffusion_model", None)


def placement(unet: torch.nn.Module) -> Placement:
    """Where the checkpoint's UNet waits while IC-Light runs: RAM under --medvram/--lowvram (their
    hooks keep VRAM low), else the setting; Automatic keeps it on the GPU when a second UNet fits."""
    setting = shared.opts.data.get(PLACEMENT_OPTION, "Automatic")
    chosen = PLACEMENT_CHOICES.get(setting)
    if getattr(shared.sd_model, "lowvram", False):
        if chosen == "keep":
            print(f"IC-Light: '{setting}' is not followed under --medvram/--lowvram: the checkpoint UNet is "
                  "parked in RAM while IC-Light runs.")
        return "park"
    return chosen or ("keep" if second_unet_fits(unet) else "park")


def second_unet_fits(unet: torch.nn.Module) -> bool:
    """Whether a merged copy fits on the generation device beside the checkpoint's UNet: always where the
    device's memory is RAM (CPU, MPS: parking would move weights within one memory), never where its free
    memory is unknown (DirectML)."""
    device = torch.device(devices.device)
    if device.type in SHARES_RAM:
        return True
    if any(key.placement == "keep" for key in MERGED_WEIGHTS.entries):
        return True  # merged weights already occupy VRAM, and make room for another copy when needed
    free = free_device_memory(device)
    return free is not None and free >= sum(p.numel() * p.element_size() for p in unet.parameters()) + VRAM_HEADROOM


def cache_enabled() -> bool:
    return bool(shared.opts.data.get(CACHE_OPTION, True))


def on_cache_setting_changed() -> None:
    if not cache_enabled():
        release_merged_weights()


def release_merged_weights(*_: Any) -> None:
    """Free the cached merged weights (a setting changed, or another checkpoint is loaded), and give
    their memory back to the system."""
    MERGED_WEIGHTS.clear()
    devices.torch_gc()
    give_back_freed_memory()
