"""Refuse UNets that are not SD 1.x, telling the user what the checkpoint is instead."""
from __future__ import annotations

from typing import Mapping

import torch

from ..errors import IcLightError
from .key_table import FIRST_CONV_LDM, sd1_ldm_keys

SD1_CONTEXT_DIM = 768
# Width of the text embedding each cross-attention reads, by model family.
CONTEXT_DIMS = {1024: "an SD 2.x checkpoint", 2048: "an SDXL checkpoint", 1280: "an SDXL refiner"}
# Input channels of a first conv that is not the plain 4-channel latent.
IN_CHANNELS = {9: "an SD 1.x inpainting checkpoint", 8: "an InstructPix2Pix (or already widened) checkpoint"}


def describe_unet(shapes: Mapping[str, torch.Size]) -> str | None:
    """None for an SD 1.x UNet, else a short description of what it is."""
    context_dims = {s[1] for k, s in shapes.items() if k.endswith("attn2.to_k.weight")}
    for dim, what in CONTEXT_DIMS.items():
        if dim in context_dims:
            return what
    if "label_emb.0.0.weight" in shapes:
        return "a class-conditioned (SDXL-style) model"
    if context_dims and context_dims != {SD1_CONTEXT_DIM}:
        return f"a model with text context of width {sorted(context_dims)}"
    first_conv = shapes.get(FIRST_CONV_LDM)
    if first_conv is not None and first_conv[1] in IN_CHANNELS:
        return IN_CHANNELS[first_conv[1]]
    if set(shapes) != set(sd1_ldm_keys()) or first_conv is None or first_conv[1] != 4:
        return "a model with an unknown UNet layout"
    return None


def require_sd1_unet(shapes: Mapping[str, torch.Size]) -> None:
    """Raise `IcLightError` unless `shapes` (parameter name -> shape) describe an SD 1.x UNet."""
    what = describe_unet(shapes)
    if what is not None:
        raise IcLightError(
            f"IC-Light works with SD 1.x checkpoints only (this one is {what}). "
            "Select an SD 1.5-based checkpoint and generate again."
        )
