"""Which model family a checkpoint belongs to, and whether two families share a latent space.

A hires pass or a refiner on another checkpoint continues from the latents (or the images) the first
pass made with IC-Light on SD 1.5. SD 1.x and SD 2.x share one VAE latent space; SDXL and SD3 each
have their own, so a latent handed across that border is noise to the other model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from safetensors import SafetensorError, safe_open

SD1, SD2, SDXL, SD3 = "SD 1.x", "SD 2.x", "SDXL", "SD3"
LATENT_SPACES = {SD1: "SD", SD2: "SD", SDXL: "SDXL", SD3: "SD3"}

SD3_KEY = "model.diffusion_model.x_embedder.proj.weight"
SDXL_KEY = "conditioner.embedders.1.model.ln_final.weight"
# The first embedder's final norm: 1024 wide in SD 2.x Turbo, 1280 in the SDXL refiner.
FIRST_EMBEDDER_KEY = "conditioner.embedders.0.model.ln_final.weight"
SD2_KEY = "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"
SD1_KEY = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def family_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """The family of a checkpoint from its tensor names and shapes; None when they do not tell."""
    if SD3_KEY in shapes:
        return SD3
    if SDXL_KEY in shapes:
        return SDXL
    if FIRST_EMBEDDER_KEY in shapes:
        return SD2 if shapes[FIRST_EMBEDDER_KEY][0] == 1024 else SDXL
    if SD2_KEY in shapes:
        return SD2
    if SD1_KEY in shapes:
        return SD1
    return None


def family_from_file(path: str | Path) -> str | None:
    """The family of a `.safetensors` checkpoint from its header (no tensor is read); None for other
    files (reading a pickle checkpoint means loading it) and unreadable ones."""
    if Path(path).suffix.lower() != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return family_from_shapes({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    except (SafetensorError, OSError):
        return None


def family_of_model(sd_model: Any) -> str | None:
    """The family of a loaded A1111 model, from the flags A1111 sets when it loads one."""
    for flag, family in (("is_sd3", SD3), ("is_sdxl", SDXL), ("is_sd2", SD2), ("is_sd1", SD1)):
        if getattr(sd_model, flag, False):
            return family
    return None


def same_latent_space(a: str | None, b: str | None) -> bool:
    """Whether latents of family `a` mean the same to family `b`; an unknown family is given the benefit."""
    return a is None or b is None or LATENT_SPACES[a] == LATENT_SPACES[b]
