"""Mirrors Tiled Diffusion (pkuliyi2015/multidiffusion-upscaler-for-automatic1111, commit 22798f6) where it
meets the UNet, for the k-diffusion samplers.

- scripts/tilediffusion.py `Script.process` (lines 257-383): nothing happens unless the canvas splits into
  more than one tile (`splitable`, tile_utils/utils.py 151-158) or region control is on; the settings go
  into `p.extra_generation_params["Tiled Diffusion"]` ("NoiseInv" among them in img2img) and
  `sd_samplers.create_sampler` is replaced: `create_sampler_hijack` (410-484) creates the sampler, makes
  the delegate for `p` (MultiDiffusion or Mixture of Diffusers) and hooks it; a later sampler of the same
  name (the hires. fix pass) is the same sampler. `postprocess` (390-402) and `reset` (579-589) undo it.
- tile_utils/utils.py `split_bboxes` (160-177) and `gaussian_weights` (180-194); abstractdiffusion.py
  `init_grid_bbox` (172-186, tiles batched `tile_batch_size` at a time), `init_custom_bbox` (193-229),
  `reconstruct_custom_cond` (231-243) and the batched path of `kdiff_custom_forward` (245-288): a region
  runs on its window of `x` with its own prompt and its window of `c_concat`.
- multidiffusion.py: `hook` (15-23) sets `forward` on the denoiser's inner model object; `kdiff_forward`
  (50-70), `repeat_cond_dict` (112-129) and `sample_one_step` (131-218): a call whose latent is not the
  canvas size (the hires pass) runs untiled; each tile batch gets `x` windows tile after tile, sigma and
  text repeated, and of `c_concat` the same windows when it has the canvas size (else it is repeated);
  the sum is divided by how often each latent pixel was covered.
- mixtureofdiffusers.py: `hook` (18-27) sets `apply_model` on the `shared.sd_model` object;
  `apply_model_hijack` (59-179): the same windows, outputs weighted by Gaussian tile weights.

Left out: DDIM/PLMS, noise inversion, ControlNet and StableSR tiling, the img2img upscaler, size overwrite,
progress bars, Foreground (feathered) regions and region seeds. A region brings its text embeddings
(one row per image) instead of a prompt that A1111 would encode.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from modules import sd_samplers, shared
from modules.scripts import Script

MULTI_DIFFUSION = "MultiDiffusion"
MIXTURE_OF_DIFFUSERS = "Mixture of Diffusers"


class Window:
    """A latent window (x, y, w, h) and the slicer that cuts it from an NCHW tensor."""

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h
        self.slicer = (slice(None), slice(None), slice(y, y + h), slice(x, x + w))


@dataclass
class Region:
    """A Background region of "Region Prompt Control", in fractions of the canvas, with its text
    embeddings: `cond` and `uncond` one row per image of the batch."""

    x: float
    y: float
    w: float
    h: float
    cond: torch.Tensor
    uncond: torch.Tensor


def grid(w, h, tile_w, tile_h, overlap):
    """Tiles covering a w x h latent: evenly spread, the last ones flush with the far edges."""
    cols = math.ceil((w - overlap) / (tile_w - overlap))
    rows = math.ceil((h - overlap) / (tile_h - overlap))
    step_x = (w - tile_w) / (cols - 1) if cols > 1 else 0
    step_y = (h - tile_h) / (rows - 1) if rows > 1 else 0
    return [Window(min(int(c * step_x), w - tile_w), min(int(r * step_y), h - tile_h), tile_w, tile_h)
            for r in range(rows) for c in range(cols)]


def gaussian(w, h):
    """Mixture of Diffusers' tile weights: a Gaussian over the tile, variance 0.01 of its width squared."""
    def profile(n, mid):
        d = np.arange(n) - mid
        return np.exp(-d * d / (w * w) / 0.02) / np.sqrt(2 * np.pi * 0.01)

    return torch.from_numpy(np.outer(profile(h, h / 2), profile(w, (w - 1) / 2))).float()


class TiledSampling:
    """What both methods share: the canvas, its tiles in batches, the regions, how often each pixel is drawn."""

    def __init__(self, p, sampler, tile_w, tile_h, overlap, tile_batch_size, regions, draw_background):
        self.p, self.sampler, self.sampler_name = p, sampler, p.sampler_name
        self.w, self.h = p.width // 8, p.height // 8
        self.weights = torch.zeros(1, 1, self.h, self.w)
        self.batches = []
        if draw_background:
            tile_w, tile_h = min(tile_w, self.w), min(tile_h, self.h)
            overlap = max(0, min(overlap, min(tile_w, tile_h) - 4))
            tiles = grid(self.w, self.h, tile_w, tile_h, overlap)
            self.tile_weight = self.weight_of(tile_w, tile_h)
            for tile in tiles:
                self.weights[tile.slicer] += self.tile_weight
            n = math.ceil(len(tiles) / tile_batch_size)
            size = math.ceil(len(tiles) / n)
            self.batches = [tiles[i * size:(i + 1) * size] for i in range(n)]
        self.regions = []
        for r in regions:
            x, y = int(r.x * self.w), int(r.y * self.h)
            window = Window(x, y, min(self.w - x, math.ceil(r.w * self.w)), min(self.h - y, math.ceil(r.h * self.h)))
            window.cond, window.uncond = r.cond, r.uncond
            window.weight = self.weight_of(window.w, window.h)
            self.weights[window.slicer] += window.weight
            self.regions.append(window)

    def window_of(self, c_concat, window):
        """`c_concat`'s window when it has the canvas size (img2img conditioning), else all of it."""
        return c_concat[window.slicer] if tuple(c_concat.shape[2:]) == (self.h, self.w) else c_concat

    def batch_cond(self, cond, windows):
        n = len(windows)
        text = cond["c_crossattn"][0].repeat(n, 1, 1)
        c_concat = cond["c_concat"][0]
        if tuple(c_concat.shape[2:]) == (self.h, self.w):
            image = torch.cat([c_concat[w.slicer] for w in windows])
        else:
            image = c_concat.repeat(n, 1, 1, 1)
        return {**cond, "c_crossattn": [text], "c_concat": [image]}

    def region_cond(self, cond, region):
        """abstractdiffusion.py 270-288: the region's prompt for the cond rows, its negative for the uncond rows."""
        text = torch.cat([region.cond, region.uncond])
        return {**cond, "c_crossattn": [text], "c_concat": [self.window_of(cond["c_concat"][0], region)]}

    def draw(self, x_in, call, weigh):
        """Every tile batch and region through `call(x, sigma_repeats, cond)`; outputs added by `weigh`."""
        n = x_in.shape[0]
        out = torch.zeros_like(x_in)
        for windows in self.batches:
            x_tiles = torch.cat([x_in[w.slicer] for w in windows])
            result = call(x_tiles, len(windows), windows, None)
            for i, w in enumerate(windows):
                out[w.slicer] += weigh(result[i * n:(i + 1) * n], w, self.tile_weight)
        for region in self.regions:
            out[region.slicer] += weigh(call(x_in[region.slicer], 1, None, region), region, region.weight)
        return out


class MultiDiffusion(TiledSampling):
    def weight_of(self, w, h):
        return 1.0

    def hook(self):
        inner_model = self.sampler.model_wrap_cfg.inner_model
        self.sampler_forward = inner_model.forward
        inner_model.forward = self.kdiff_forward

    def unhook(self):
        pass  # the hook lives on the sampler, which is dropped after the generation

    def kdiff_forward(self, x_in, sigma_in, cond):
        if tuple(x_in.shape[2:]) != (self.h, self.w):
            return self.sampler_forward(x_in, sigma_in, cond=cond)

        def call(x, repeats, windows, region):
            c = self.batch_cond(cond, windows) if region is None else self.region_cond(cond, region)
            return self.sampler_forward(x, sigma_in.repeat(repeats), cond=c)

        out = self.draw(x_in, call, lambda result, window, weight: result)
        return torch.where(self.weights > 1, out / self.weights, out)


class MixtureOfDiffusers(TiledSampling):
    def weight_of(self, w, h):
        return gaussian(w, h)

    def hook(self):
        model = shared.sd_model
        self.apply_model = model.apply_model
        model.apply_model = self.apply_model_hijack

    def unhook(self):
        shared.sd_model.__dict__.pop("apply_model", None)

    def apply_model_hijack(self, x_in, t_in, cond):
        if tuple(x_in.shape[2:]) != (self.h, self.w):
            return self.apply_model(x_in, t_in, cond)

        def call(x, repeats, windows, region):
            c = self.batch_cond(cond, windows) if region is None else self.region_cond(cond, region)
            return self.apply_model(x, t_in.repeat(repeats), c)

        rescale = 1 / self.weights
        return self.draw(x_in, call, lambda result, window, weight: result * weight * rescale[window.slicer])


class TiledDiffusionScript(Script):
    """The always-on script, with its settings given to the constructor instead of as script arguments."""

    args_from = args_to = 0
    methods = {MULTI_DIFFUSION: MultiDiffusion, MIXTURE_OF_DIFFUSERS: MixtureOfDiffusers}

    def __init__(self, method, tile_w=8, tile_h=8, overlap=4, tile_batch_size=4, regions=(), draw_background=True,
                 noise_inversion=False):
        self.settings = dict(tile_w=tile_w, tile_h=tile_h, overlap=overlap, tile_batch_size=tile_batch_size,
                             regions=list(regions), draw_background=draw_background)
        self.method, self.noise_inversion = method, noise_inversion
        self.delegate = None
        self.create_sampler_original = None

    def title(self):
        return "Tiled Diffusion"

    def process(self, p, *args):
        self.reset()
        w, h, s = p.width // 8, p.height // 8, self.settings
        overlap = min(s["overlap"], min(s["tile_w"], s["tile_h"]) - 4)
        splits = math.ceil((w - overlap) / (s["tile_w"] - overlap)) > 1 or math.ceil((h - overlap) / (s["tile_h"] - overlap)) > 1
        is_img2img = bool(getattr(p, "init_images", None))
        if not (splits or s["regions"] or (is_img2img and self.noise_inversion)):
            return
        info = {"Method": self.method, "Tile tile width": s["tile_w"], "Tile tile height": s["tile_h"],
                "Tile Overlap": s["overlap"], "Tile batch size": s["tile_batch_size"]}
        if is_img2img and self.noise_inversion:
            info["NoiseInv"] = True
        p.extra_generation_params["Tiled Diffusion"] = info
        self.create_sampler_original = sd_samplers.create_sampler
        sd_samplers.create_sampler = lambda name, model: self.create_sampler(name, model, p)

    def create_sampler(self, name, model, p):
        if self.delegate is not None and self.delegate.sampler_name == name:
            return self.delegate.sampler
        sampler = self.create_sampler_original(name, model)
        self.delegate = self.methods[self.method](p, sampler, **self.settings)
        self.delegate.hook()
        return sampler

    def postprocess(self, p, processed, *args):
        self.reset()

    def reset(self):
        if self.create_sampler_original is not None:
            sd_samplers.create_sampler = self.create_sampler_original
            self.create_sampler_original = None
        if self.delegate is not None:
            self.delegate.unhook()
            self.delegate = None
