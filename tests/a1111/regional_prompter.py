"""Mirrors Regional Prompter (hako-mikan/sd-webui-regional-prompter, commit be62345) where it meets the
UNet's batch: the Matrix mode split into columns (its default), k-diffusion samplers, on A1111 v1.10.1.

- scripts/rp.py `Script.process` (446-626): in Latent mode the areas' prompts are joined by AND (608),
  so A1111's CFGDenoiser runs each image's rows once per area; `denoiserdealer` (724-746) registers
  `denoiser_callback` with `on_cfg_denoiser` and `denoised_callback` with `on_cfg_denoised` and turns
  `opts.batch_cond_uncond` off. In Attention mode `hook_forwards` (scripts/attention.py 112-125) sets
  `forward` on every `attn2` CrossAttention object of `p.sd_model.model.diffusion_model`;
  `unloader` (710-722, from `postprocess`) removes it and restores `batch_cond_uncond`.
- scripts/latent.py `denoiser_callback_s`, Latent branch (162-198): the rows of `x`, `image_cond`,
  `sigma` and the text cond reordered in place from one block per image (its areas) to one block per
  area (its images).
- scripts/latent.py `denoised_callback_s`, A1111 branch (235-278): each image's cond row of area `a`
  becomes that area's output inside its mask (`filters`, remade when the latent size changes: the
  hires pass) and the image's uncond output outside.
- scripts/attention.py `hook_forward` / `matsepcalc` (130-247, Columns): each area's attention with its
  own tokens, put side by side by columns of the attention map; the map's height and width from the
  generation's size (`hr_h`/`hr_w` once the latent grows: the hires pass).

Departures: the callbacks are removed in `postprocess` (RP registers them once for good and lets them
act only while it is active); prompts are text embeddings here, so `process` sets `p.conds` to what A1111 makes of the
areas' prompts joined by AND (one row per area and image, weight 1); an area's tokens are a slice of the
one prompt's tokens; attention is ldm's own `CrossAttention.forward` (RP reimplements the same
softmax attention); Lora handling, base and common prompts, and the Mask and Prompt modes are left out.
"""
import torch
from ldm.modules.attention import CrossAttention

from modules import script_callbacks, shared
from modules.scripts import Script


def column_masks(areas, height, width):
    """One band of columns per area, left to right, equal widths (Divide Ratio "1,1")."""
    masks = torch.zeros(areas, 1, height, width)
    for a in range(areas):
        masks[a, :, :, a * width // areas:(a + 1) * width // areas] = 1
    return masks


class RegionalPrompterScript(Script):
    args_from = args_to = 0

    def __init__(self, mode, area_conds=None):
        """`mode` "Latent" or "Attention"; Latent mode needs `area_conds`, one embedding row per area."""
        self.mode, self.area_conds = mode, area_conds
        self.saved_batch_cond_uncond = None
        self.hooked = []
        self.callbacks = []

    def title(self):
        return "Regional Prompter"

    def process(self, p, *args):
        self.batch_size = p.batch_size
        hires = getattr(p, "hr_scale", 1) if getattr(p, "enable_hr", False) else 1
        self.sizes = [(p.height, p.width), (int(p.height * hires), int(p.width * hires))]
        self.saved_batch_cond_uncond = shared.opts.batch_cond_uncond
        if self.mode == "Latent":
            areas = len(self.area_conds)
            rows = torch.cat([self.area_conds[a] for _ in range(p.batch_size) for a in range(areas)])
            conds_list = [[(i * areas + a, 1.0) for a in range(areas)] for i in range(p.batch_size)]
            uncond = p.uncond[:1].expand(p.batch_size, -1, -1)
            p.conds = lambda: ((conds_list, rows), uncond)
            script_callbacks.on_cfg_denoiser(self.denoiser_callback)
            script_callbacks.on_cfg_denoised(self.denoised_callback)
            self.callbacks = [self.denoiser_callback, self.denoised_callback]
            shared.opts.batch_cond_uncond = False
        else:
            for name, module in p.sd_model.model.diffusion_model.named_modules():
                if "attn2" in name and type(module).__name__ == "CrossAttention":
                    module.forward = self.attention_forward(module)
                    self.hooked.append(module)

    def postprocess(self, p, processed, *args):
        for module in self.hooked:
            del module.forward
        self.hooked.clear()
        for callback in self.callbacks:
            script_callbacks.remove_callbacks_for_function(callback)
        self.callbacks.clear()
        if self.saved_batch_cond_uncond is not None:
            shared.opts.batch_cond_uncond = self.saved_batch_cond_uncond

    def denoiser_callback(self, params):
        batch = self.batch_size
        areas = params.x.shape[0] // batch - 1
        before = {name: getattr(params, name).clone() for name in ("x", "image_cond", "sigma", "text_cond")}
        for a in range(areas):
            for b in range(batch):
                for name, values in before.items():
                    getattr(params, name)[b + a * batch] = values[a + b * areas]

    def denoised_callback(self, params):
        x, batch = params.x, self.batch_size
        areas = x.shape[0] // batch - 1
        by_area = x.clone()
        masks = column_masks(areas, *x.shape[2:])
        for b in range(batch):
            for a in range(areas):
                uncond = x[x.shape[0] - batch + b]
                x[a + b * areas] = by_area[b + a * batch] * masks[a] + uncond * (1 - masks[a])

    def attention_forward(self, module):
        def forward(x, context=None, mask=None, **kwargs):
            tokens = x.shape[1]
            h, w = self.attention_map_size(tokens)
            areas, n = 2, context.shape[1]
            out = None
            for a in range(areas):
                area_out = CrossAttention.forward(module, x, context[:, a * n // areas:(a + 1) * n // areas], mask)
                area_out = area_out.reshape(x.shape[0], h, w, -1)
                if out is None:
                    out = torch.zeros_like(area_out)
                cols = slice(a * w // areas, (a + 1) * w // areas)
                out[:, :, cols] = area_out[:, :, cols]
            return out.reshape(x.shape[0], tokens, -1)

        return forward

    def attention_map_size(self, tokens):
        """Height and width of an attention map of `tokens` pixels: the first pass's size or the hires one's."""
        for height, width in self.sizes:
            scale = round((height * width / tokens) ** 0.5)
            h, w = -(-height // scale), -(-width // scale)
            if h * w == tokens:
                return h, w
        raise ValueError(f"no generation size gives an attention map of {tokens} pixels")
