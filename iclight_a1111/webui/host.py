"""`generation.job.Host` on A1111: the IC-Light UNet as A1111's current SdUnet, the checkpoint's VAE, the CFG
denoiser's rows; the rest as both webuis have it (`webui_host.WebuiHost`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from modules import devices, sd_unet, shared

from ..errors import IcLightError, IcLightFault
from ..images.vae_encoding import encode_latents
from ..unet.concat_unet import IcLightUnet
from ..unet.model_files import ModelFile
from ..unet.row_alignment import route_concat_latents
from .merged_weights import MERGED_WEIGHTS, model_in_use, release_merged_weights
from .sd_unet_option import IcLightSdUnet, IcLightUnetOption, deactivate_current
from .webui_host import WebuiHost


class A1111Host(WebuiHost):
    """`generation.Host` on A1111."""

    def check_unet_in_use(self, p: Any) -> None:
        """Refuse what would replace the UNet IC-Light runs on (the SD 1.x check comes with the merge)."""
        option = sd_unet.get_unet_option()
        if option is not None:
            raise IcLightError(
                f"Settings > SD Unet uses '{option.label}', which replaces the checkpoint's UNet; IC-Light needs "
                "the checkpoint's own UNet. Set SD Unet to None to use IC-Light."
            )

    def release_merged_weights(self) -> None:
        release_merged_weights()

    def activate(self, model: ModelFile) -> None:
        """Make the IC-Light UNet of `model` on the checkpoint in use the current SdUnet, without A1111's
        `apply_unet` device round trip; nothing to do when it already is."""
        current = sd_unet.current_unet
        if isinstance(current, IcLightSdUnet) and current.is_active_for(model, model_in_use()):
            return
        if current is not None and not isinstance(current, IcLightUnet):
            label = getattr(getattr(current, "option", None), "label", type(current).__name__)
            raise IcLightError(
                f"Another UNet ('{label}', Settings > SD Unet) is active; IC-Light needs the checkpoint's own UNet. "
                "Set SD Unet to None to use IC-Light."
            )
        self.deactivate()
        option = IcLightUnetOption(model)
        unet = option.create_unet()
        unet.option = option
        unet.activate()
        # As `apply_unet` would: A1111 itself then deactivates it before it reloads the checkpoint.
        sd_unet.current_unet_option, sd_unet.current_unet = option, unet

    def forget_other_models(self) -> None:
        """Drop IC-Light's state for any model but the one in use: A1111 may have switched checkpoints
        through a path that tells no one (an already-loaded checkpoint, `sd_checkpoints_limit` > 1)."""
        current = sd_unet.current_unet
        if isinstance(current, IcLightUnet) and current.checkpoint.module is not model_in_use():
            self.deactivate()
        if MERGED_WEIGHTS.weights is not None and not MERGED_WEIGHTS.held_for(model_in_use()):
            release_merged_weights()

    def deactivate(self) -> None:
        """Off at the end of a generation (or a pass); the merged copy stays cached for the next one."""
        deactivate_current()

    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return encode_images(images)

    def route(self, p: Any, latents: torch.Tensor) -> None:
        route_to_active_unet(p.sampler, latents)


def encode_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """IC-Light latents of uint8 HxWx3 images through the current checkpoint's VAE."""
    sd_model = shared.sd_model
    vae_dtype = next(sd_model.first_stage_model.parameters()).dtype
    return encode_latents(images, sd_model.encode_first_stage, sd_model.scale_factor, devices.device, vae_dtype)


def route_to_active_unet(sampler: object, latents: torch.Tensor) -> None:
    """Feed `latents` to the active IC-Light UNet through this sampling pass's CFGDenoiser."""
    unet = sd_unet.current_unet
    if not isinstance(unet, IcLightUnet):
        raise IcLightFault("IC-Light latents were given but the IC-Light UNet is not active.")
    route_concat_latents(sampler.model_wrap_cfg, unet, latents)

