"""The one module of the library that imports A1111's `modules.*`.

It turns the library's pieces into A1111 objects: an `sd_unet.SdUnetOption` per IC-Light file, an
`sd_unet.SdUnet` running the current checkpoint with IC-Light weights, VAE encoding with the
checkpoint's VAE, and the CFGDenoiser routing of a sampling pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from modules import devices, paths, sd_hijack, sd_unet, shared

from .concat_unet import CheckpointUnet, IcLightUnet
from .errors import IcLightError
from .model_files import MODEL_FOLDER_NAME, find_model_files
from .offset_files import load_offsets
from .row_alignment import route_concat_latents
from .vae_encoding import encode_latents

UNET_LABEL_PREFIX = "IC-Light: "


class IcLightSdUnet(IcLightUnet, sd_unet.SdUnet):
    """`IcLightUnet` as the SdUnet A1111's `sd_unet.apply_unet` activates."""


class IcLightUnetOption(sd_unet.SdUnetOption):
    """One IC-Light file, listed in A1111's SD Unet options."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = UNET_LABEL_PREFIX + path.stem
        # No checkpoint name: "Automatic" must never pick IC-Light for a plain generation.
        self.model_name = None

    def create_unet(self) -> IcLightSdUnet:
        unet = shared.sd_model.model.diffusion_model
        checkpoint = CheckpointUnet(unet, sd_hijack.ldm_original_forward)
        return IcLightSdUnet(checkpoint, load_offsets(self.path), device=devices.device)


def model_folders() -> list[Path]:
    """`models/ic-light` and the folder given by `--iclight-dir`, if any."""
    folders = [Path(paths.models_path) / MODEL_FOLDER_NAME]
    extra = getattr(shared.cmd_opts, "iclight_dir", None)
    if extra:
        folders.append(Path(extra))
    return folders


def add_unet_options(options: list) -> None:
    """`script_callbacks.on_list_unets` callback: one option per IC-Light file found."""
    options.extend(IcLightUnetOption(path) for path in find_model_files(model_folders()))


def encode_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """IC-Light latents of uint8 HxWx3 images through the current checkpoint's VAE."""
    sd_model = shared.sd_model
    return encode_latents(images, sd_model.encode_first_stage, sd_model.scale_factor, devices.device, devices.dtype_vae)


def route_to_active_unet(sampler: object, latents: torch.Tensor) -> None:
    """Feed `latents` to the active IC-Light UNet through this sampling pass's CFGDenoiser."""
    unet = sd_unet.current_unet
    if not isinstance(unet, IcLightUnet):
        raise IcLightError("IC-Light latents were given but the IC-Light UNet is not active.")
    route_concat_latents(sampler.model_wrap_cfg, unet, latents)
