"""The inpaint overlay of a relit inpaint: the inpainted core left to the relit result.

After sampling A1111 lays an overlay of the user's picture over each result (`postprocess_maskoverlay`
may replace it, then `apply_overlay`). With a rounded mask A1111's overlay is transparent wherever
the mask is at least half on, and stays as it is. Soft inpainting (A1111's built-in extension) builds its own in `post_sample`: the picture is
pasted back wherever the samples differ little from `p.init_latent`, by its thresholds; with some
settings (a difference contrast of 0, a high threshold) over the whole mask. Inside the core, where
every latent started from the light map (or was wholly inpainted), the result is the relit image for
every setting: there the overlay is cleared, and its mask marks the core as inpainted.

The hook runs after soft inpainting's in A1111's default order (built-in extensions first).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image


def keep_core_relit(p: Any, ppmo: Any) -> None:
    """`postprocess_maskoverlay`'s arguments (`ppmo.overlay_image`, `ppmo.mask_for_overlay`) with the
    core, where `p.nmask` (A1111's inpaint mask at latent size) is 1, left to the result. Only with a
    soft mask (`p.mask_round` off, as soft inpainting sets it): a rounded mask's overlay is A1111's
    own, already clear wherever the mask is at least half on."""
    overlay, nmask = ppmo.overlay_image, getattr(p, "nmask", None)
    if nmask is None or overlay is None or getattr(p, "mask_round", True):
        return
    core = core_mask(nmask, overlay.size)
    rgba = np.array(overlay.convert("RGBA"))
    rgba[..., 3] = (rgba[..., 3].astype(np.float32) * (1 - core / 255.0)).round().astype(np.uint8)
    ppmo.overlay_image = Image.fromarray(rgba)
    if ppmo.mask_for_overlay is not None:
        mask = np.array(ppmo.mask_for_overlay.convert("L").resize(overlay.size))
        ppmo.mask_for_overlay = Image.fromarray(np.maximum(mask, core.round().astype(np.uint8)))


def core_mask(nmask: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """float 0..255 (HxW at `size`): 255 over the latent pixels wholly inpainted, interpolated between."""
    latent = nmask[0] if nmask.dim() == 3 else nmask[0, 0]
    core = ((latent >= 1).cpu().numpy() * 255).astype(np.uint8)
    return np.array(Image.fromarray(core).resize(size, Image.BILINEAR)).astype(np.float32)
