"""Other extensions' settings a generation cannot run with beside IC-Light, refused before sampling.

They are read from what those extensions record for the infotext in their own `process` hook, so the
check runs from `p.init`, after every script's `process` hook whatever the order of the extensions.
"""
from __future__ import annotations

from typing import Any

from ..errors import IcLightError

TILED_DIFFUSION = "Tiled Diffusion"  # its settings in `p.extra_generation_params` (scripts/tilediffusion.py)


def refuse_unsupported(p: Any) -> None:
    """Raise for a combination IC-Light cannot relight: Tiled Diffusion's Noise Inversion runs the UNet
    before the sampler, with the picture's own image conditioning instead of IC-Light's latents."""
    tiled = p.extra_generation_params.get(TILED_DIFFUSION)
    if isinstance(tiled, dict) and tiled.get("NoiseInv"):
        raise IcLightError(
            "Tiled Diffusion's Noise Inversion runs the UNet without IC-Light's foreground latents: turn Noise "
            "Inversion off to relight with Tiled Diffusion (its tiles, MultiDiffusion and Mixture of Diffusers, "
            "with or without region control, work with IC-Light)."
        )
