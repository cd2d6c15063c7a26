"""`generation.job.Host` on Forge: the IC-Light UNet is a clone of Forge's UNet patcher carrying the offsets
as patches and the latents as its concat condition, made before every sampling pass; Forge merges the
patches when it loads that clone and restores the checkpoint's weights when it loads another, as it does
for Lora. Nothing of A1111's SdUnet, merged-weights cache or weight placement runs here.

Forge resets `p.sd_model.forge_objects` before every pass's `process_before_every_sampling` hook (and
twice around the hires pass's), so the clone is made in that hook (`route`), every time."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from modules import shared

from ..errors import IcLightError, IcLightFault
from ..forge.offset_patches import ForgePatches, PatchesInRam, carries_patches, check_unet, relighting_unet
from ..forge.vae_encoding import encode_latents
from ..unet.checkpoint_family import SD1, family_of_model
from ..unet.model_files import ModelFile
from ..unet.offset_files import file_source
from .merged_weights import has_room
from .model_folders import file_hash
from .webui_host import WebuiHost

FILES_KEPT = 2  # IC-Light files kept in RAM (fc and fbc), while RAM leaves a generation room
RAM = torch.device("cpu")


class ForgeHost(WebuiHost):
    """`generation.Host` on Forge."""

    def __init__(self) -> None:
        self.kept = PatchesInRam(FILES_KEPT, has_room=lambda nbytes: has_room(nbytes, RAM))
        self.active: ForgePatches | None = None

    def check_unet_in_use(self, p: Any) -> None:
        """Refuse a checkpoint that is not SD 1.x, and Forge's refiner, which swaps the UNet mid-sampling."""
        family = family_of_model(p.sd_model)
        if family not in (SD1, None):
            raise IcLightError(f"IC-Light works with SD 1.x checkpoints only (this one is an {family} checkpoint). "
                               "Select an SD 1.5-based checkpoint and generate again.")
        check_unet(p.sd_model.forge_objects.unet)
        if getattr(p, "refiner_checkpoint", None) not in (None, "", "None", "none"):
            raise IcLightError("Forge's refiner swaps the UNet in the middle of sampling, and the refiner's UNet carries no "
                               "IC-Light: set Refiner off, or use the checkpoint as Hires checkpoint (IC-Light's 'Hires "
                               "pass' decides whether that pass is relit).")

    def activate(self, model: ModelFile) -> None:
        """The file's offsets in RAM (read once), checked against the checkpoint's UNet."""
        patches = self.kept.get(file_source(model.path, file_hash(model)), model.path.stat().st_size)
        check_unet(shared.sd_model.forge_objects.unet, patches)
        self.active = patches

    def deactivate(self) -> None:
        """Off: later passes get Forge's UNet as it is (Forge restores the weights when it loads it)."""
        self.active = None

    def forget_other_models(self) -> None:
        """Nothing of IC-Light is kept for a model: Forge keeps its own patches."""

    def release_merged_weights(self) -> None:
        """Forge merges and restores the weights itself; the offsets kept in RAM stay for the next request."""

    def release_kept_offsets(self) -> None:
        """What IC-Light holds between generations, given back when the checkpoint is unloaded: the offsets kept
        in RAM, and the patched UNet clone left in `forge_objects` until the next generation resets it. During a
        generation (the API's unload is not queued) the clone stays: Forge's sampling reads it at every step."""
        self.kept.clear()
        model = shared.sd_model  # Forge's property only reads it (modules/sd_models.py 401), loads nothing
        objects = getattr(model, "forge_objects", None)
        if self.active is None and objects is not None and carries_patches(objects.unet):
            objects.unet = model.forge_objects_after_applying_lora.unet

    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return encode_latents(shared.sd_model.forge_objects.vae, images)

    def route(self, p: Any, latents: torch.Tensor) -> None:
        """This pass's UNet: Forge's, cloned with the IC-Light patches and `latents` as its concat condition."""
        if self.active is None:
            raise IcLightFault("IC-Light was switched off during this generation: nothing is generated without relighting.")
        objects = p.sd_model.forge_objects
        objects.unet = relighting_unet(objects.unet, self.active, latents, p.batch_size)
