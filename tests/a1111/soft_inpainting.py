"""Mirrors the built-in Soft inpainting extension of A1111 v1.10.1
(extensions-builtin/soft-inpainting/scripts/soft_inpainting.py), the path a relit inpaint takes:

- `process` (lines 658-671): with a mask, `p.mask_round = False`, and its settings into the infotext.
- `on_mask_blend` (673-692): the final blend keeps the samples as they are (the per-step blends
  are left out, as the stand-in denoiser leaves out mask blending).
- `post_sample` (694-741): the overlays rebuilt from `p.init_images` (flattened on the img2img
  background colour, fitted by the resize mode), one per image of the batch; then, for latent
  samples, `apply_adaptive_masks(latent_orig=p.init_latent, latent_processed=samples)` (lines
  128-200): per pixel of the latent the distance between the two; with the mask influence, a
  distance at which the original keeps half its opacity (`difference threshold` scaled by
  `0.5 * (1 - influence) + (1 - nmask ** (scale / 2)) * influence`, turned into `s / (1.00001 - s)`);
  `1 / (1 + (distance / that) ** contrast)`, smootherstep, inverted: the mask of where the result
  shows; fitted to the output (LANCZOS), blurred (radius 4); the original pasted through its
  inverse into each overlay.
- `postprocess_maskoverlay` (743-758): each result's overlay and mask replaced by those.

Departure: the distance map is not smoothed by the two weighted-histogram filters (lines 156-160).
Defaults (line 444): power 1, scale 0.5, detail 4, mask influence 0, threshold 0.5, contrast 2.
"""
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from modules import images, scripts, shared

DEFAULTS = (True, 1.0, 0.5, 4.0, 0.0, 0.5, 2.0)


class SoftInpaintingScript(scripts.Script):
    def __init__(self):
        self.masks_for_overlay = None
        self.overlay_images = None

    def title(self):
        return "Soft Inpainting"

    def process(self, p, enabled, power, scale, detail, mask_inf, dif_thresh, dif_contr):
        if enabled and getattr(p, "image_mask", None) is not None:
            p.mask_round = False
            p.extra_generation_params["Soft inpainting enabled"] = True

    def on_mask_blend(self, p, mba, enabled, *settings):
        if enabled and mba.is_final_blend:
            mba.blended_latent = mba.current_latent

    def post_sample(self, p, ps, enabled, power, scale, detail, mask_inf, dif_thresh, dif_contr):
        if not enabled or getattr(p, "nmask", None) is None:
            return
        self.overlay_images = []
        for img in p.init_images:
            image = images.flatten(img, shared.opts.img2img_background_color)
            if p.resize_mode != 3:
                image = images.resize_image(p.resize_mode, image, p.width, p.height)
            self.overlay_images.append(image.convert("RGBA"))
        if len(p.init_images) == 1:
            self.overlay_images = self.overlay_images * p.batch_size
        influence = 1 - torch.clamp(p.nmask[:, 0].float() if p.nmask.dim() == 4 else p.nmask[0].float(), 0, 1) ** (scale / 2)
        influence = 0.5 * (1 - mask_inf) + influence * mask_inf
        half_distance = (dif_thresh * influence / (1.00001 - influence)).numpy()
        distance = torch.norm(ps.samples - p.init_latent, p=2, dim=1).float().numpy()
        self.masks_for_overlay = []
        for i, overlay in enumerate(self.overlay_images):
            half = half_distance[i] if half_distance.ndim == 3 else half_distance
            shown = 1 - smootherstep(1 / (1 + (distance[i] / half) ** dif_contr))
            mask = Image.fromarray((255.0 * shown).astype(np.uint8))
            mask = images.resize_image(2, mask, p.width, p.height).convert("L").filter(ImageFilter.GaussianBlur(radius=4))
            self.masks_for_overlay.append(mask)
            masked = Image.new("RGBa", overlay.size)
            masked.paste(overlay.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask))
            self.overlay_images[i] = masked.convert("RGBA")

    def postprocess_maskoverlay(self, p, ppmo, enabled, *settings):
        if enabled and self.masks_for_overlay is not None:
            ppmo.mask_for_overlay = self.masks_for_overlay[ppmo.index]
            ppmo.overlay_image = self.overlay_images[ppmo.index]


def smootherstep(x):
    return x * x * x * (x * (6 * x - 15) + 10)
