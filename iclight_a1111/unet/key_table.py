"""Key names of the SD 1.x UNet: diffusers `UNet2DConditionModel` to ldm `UNetModel`.

The table itself is data (`sd15_unet_keys.tsv`, one row per parameter); this module only reads it
and renames state dicts with it.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Mapping, TypeVar

from ..errors import ModelFileFault

TABLE_PATH = Path(__file__).with_name("sd15_unet_keys.tsv")
FIRST_CONV_LDM = "input_blocks.0.0.weight"
FIRST_CONV_DIFFUSERS = "conv_in.weight"
# Prefixes seen on ldm-layout files: a bare UNet, a UNet cut from a checkpoint, a whole checkpoint.
LDM_PREFIXES = ("", "diffusion_model.", "model.diffusion_model.")

V = TypeVar("V")


@functools.lru_cache(maxsize=None)
def diffusers_to_ldm() -> dict[str, str]:
    """The 686 rows of the table, diffusers key -> ldm key, in ldm state-dict order."""
    rows = {}
    for line in TABLE_PATH.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            diffusers_key, ldm_key = line.split("\t")
            rows[diffusers_key] = ldm_key
    return rows


def sd1_ldm_keys() -> tuple[str, ...]:
    """Every parameter name of an SD 1.x ldm UNetModel."""
    return tuple(diffusers_to_ldm().values())


def detect_layout(keys: Mapping[str, object]) -> str:
    """'diffusers' or the ldm prefix in use ('', 'diffusion_model.' or 'model.diffusion_model.')."""
    if FIRST_CONV_DIFFUSERS in keys:
        return "diffusers"
    for prefix in LDM_PREFIXES:
        if prefix + FIRST_CONV_LDM in keys:
            return prefix
    raise ModelFileFault(
        "This file is not an IC-Light UNet model: it has no first-conv weight "
        f"('{FIRST_CONV_DIFFUSERS}' or '{FIRST_CONV_LDM}'). "
        "Use iclight_sd15_fc.safetensors, iclight_sd15_fcon.safetensors or iclight_sd15_fbc.safetensors."
    )


def to_ldm_keys(tensors: Mapping[str, V]) -> tuple[dict[str, V], str]:
    """Rename a diffusers- or ldm-layout state dict to bare ldm keys; returns it and the layout found.

    A key outside the layout's naming (an unknown diffusers key, or an ldm key without the prefix the
    file otherwise uses) is refused by name, so a wrong file never half-loads.
    """
    layout = detect_layout(tensors)
    if layout == "diffusers":
        table = diffusers_to_ldm()
        unknown = [k for k in tensors if k not in table]
        if unknown:
            raise ModelFileFault(_unexpected_keys_message(unknown, "diffusers SD 1.x UNet"))
        return {table[k]: v for k, v in tensors.items()}, layout
    foreign = [k for k in tensors if not k.startswith(layout)]
    if foreign:
        raise ModelFileFault(_unexpected_keys_message(foreign, f"ldm UNet (keys prefixed '{layout}')"))
    return {k[len(layout):]: v for k, v in tensors.items()}, layout


def _unexpected_keys_message(keys: list[str], layout: str) -> str:
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"This IC-Light file has keys that are not part of a {layout}: {shown}. The file is not an SD 1.x IC-Light model."
