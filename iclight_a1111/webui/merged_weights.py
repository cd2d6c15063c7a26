"""The merged-weights cache in A1111: its settings, where the checkpoint's UNet waits, when the cache goes."""
from __future__ import annotations

from typing import Any

import torch
from modules import devices, shared

from ..unet.concat_unet import Placement
from ..unet.merged_cache import MergedWeightsCache

CACHE_OPTION = "iclight_cache_merged_weights"
PLACEMENT_OPTION = "iclight_checkpoint_placement"
PLACEMENT_CHOICES = {"Automatic": None, "Keep on GPU": "keep", "Park in RAM": "park"}
VRAM_HEADROOM = 2 * 2**30  # left free for sampling at about 512x640 after a second UNet
MERGED_WEIGHTS = MergedWeightsCache()


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
    device = torch.device(devices.device)
    if device.type != "cuda":
        return True  # CPU, MPS: one memory for both
    if MERGED_WEIGHTS.key is not None and MERGED_WEIGHTS.key.placement == "keep":
        return True  # the merged weights already occupy their VRAM
    free, _ = torch.cuda.mem_get_info(device)
    return free >= sum(p.numel() * p.element_size() for p in unet.parameters()) + VRAM_HEADROOM


def cache_enabled() -> bool:
    return bool(shared.opts.data.get(CACHE_OPTION, True))


def on_cache_setting_changed() -> None:
    if not cache_enabled():
        release_merged_weights()


def release_merged_weights(*_: Any) -> None:
    """Free the cached merged weights (the setting was turned off, or another checkpoint was loaded)."""
    MERGED_WEIGHTS.clear()
    devices.torch_gc()
