"""Mirrors modules/processing.py (v1.10.1), the order and data flow an always-on script sees.

- `process_images` (lines 819-862): `scripts.before_process(p)`, the selected checkpoint loaded again if a
  refiner or hires checkpoint left another one (`sd_models.reload_model_weights()`) unless
  `p.override_settings` names a known checkpoint, the overrides applied to `shared.opts` (a checkpoint one
  loaded then: the X/Y/Z checkpoint axis and the API's `override_settings`) and restored in `finally`. A list `p.seed` gives each image its seed.
- `process_images_inner` (lines 863-1080): the refiner's checkpoint looked up, `scripts.process(p)`,
  then `p.init(...)`, then `sd_unet.apply_unet()`; per batch (line 941): stop when interrupted,
  `sd_models.reload_model_weights()` (back to the selected checkpoint when a hires checkpoint or the
  refiner changed it), `before_process_batch`, `process_batch`, `p.sample(...)`, decode,
  `postprocess_batch`; at the end `scripts.postprocess(p, processed)` (not reached when sampling raises).
- txt2img `init` (lines 1252-1305): the hires checkpoint looked up ("Hires checkpoint" in the
  infotext), the latent scale mode of the upscaler (None for a pixel upscaler).
- txt2img `sample` (lines 1307-1362): sampler created; with `p.firstpass_image` (the *Upscale*
  button, lines 1310-1330) and hires. fix no first pass and no first-pass hook: the image's array
  (four channels for RGBA) as the decoded first pass (pixel upscalers) or encoded (Latent); else noise, `process_before_every_sampling`,
  `sampler.sample`; with hires. fix the first pass decoded (pixel upscalers), then
  `sd_models.reload_model_weights(info=hr_checkpoint_info)` under `SkipWritingToConfig`, then
  `sample_hr_pass` (lines 1364-1464): nothing more when interrupted, new sampler on the model now
  loaded, latent upscale ("Latent" upscalers) or the decoded images resized and encoded with that
  model's VAE, new noise, `process_before_every_sampling` with `p.is_hr_pass` set,
  `sampler.sample_img2img` with the hires steps.
- `close()` (lines 404-410, 1466-1472), called by modules/txt2img.py and img2img.py through `closing(p)`
  whatever happens (`run_generation` here).
- img2img `init` (lines 1602-1746, "Whole picture"): sampler created; an inpaint mask (`p.mask`,
  stored as `image_mask`) made L, blurred by `p.mask_blur`, and fitted with `images.resize_image(p.resize_mode, ...)`, its overlay
  mask doubled and clipped; each init image flattened on `img2img_background_color` and fitted the
  same way (not with mode 3, "latent upscale": the latent is interpolated to the output size after
  encoding); overlay images and colour corrections from the fitted pictures; `/255` then `*2 - 1`,
  encoded with `get_first_stage_encoding(encode_first_stage(...))` (a posterior sample), one image
  repeated over the batch or one per image; the mask at latent size becomes `p.mask` (keep) /
  `p.nmask` (inpaint), rounded to 0/1 unless `p.mask_round` is False (soft inpainting).
  "Masked content" (`p.inpainting_fill`, lines 1694-1756): 0 *fill* fills the fitted picture under the
  mask before encoding and writes `Masked content: fill` (once per init image); 1 *original* writes
  nothing; 2 *latent noise* puts seeded noise into the latent by `nmask` and 3 *latent nothing* zeroes
  it there, writing `latent noise` / `latent nothing` after the encoding.
  `sample`: noise, `process_before_every_sampling(x=p.init_latent)`, then
  `sample_img2img(p.init_latent, ...)` reading `p.init_latent` after the hook; with a mask the
  result is blended `samples * nmask + init_latent * mask`, which `on_mask_blend` may replace
  (lines 1777-1783).
- After `p.sample` (lines 990-993): `post_sample` may replace the samples.
- Per result (lines 1038-1106): `p.batch_index`, `postprocess_image`, `postprocess_maskoverlay` (may
  replace the overlay and its mask), the overlay (`apply_overlay`, `opts.overlay_inpaint`), `postprocess_image_after_composite`, saved with its infotext when
  `save_samples()`, then with a mask and `opts.return_mask` / `opts.return_mask_composite` the
  greyscale mask and the masked composite appended after it (without an infotext). Then the grid
  first when `opts.return_grid` and more than one image, `index_of_first_image` 1 (lines 1113-1124).
- `save_samples()`: `opts.samples_save` and not `p.do_not_save_samples`; results go to `p.outpath_samples`.

Departures: prompts arrive as text-embedding tensors (`p.cond`, `p.uncond`; no text encoder);
noise is one `torch.Generator` per image seeded `seed + index` (A1111's ImageRNG draws the same way);
colour corrections are recorded, not applied; *fill* blends the mean colour of the kept pixels in by
the mask (A1111's `masking.fill` spreads blurred colours from around the mask); the infotext is `Seed: <seed>,
Prompt: <the image's prompt>, <extra generation params>`; `opts.return_grid` defaults to off here (A1111: on)
so that tests index results from 0, and `mask_blur` to 0 (A1111: 4) so that tests see the mask they draw,
`inpainting_fill` to 1 (*original*, the UI's default; the dataclass's is 0).
"""
import random
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from modules import images as webui_images
from modules import scripts, sd_models, sd_samplers, sd_unet, shared


# Where results are saved (A1111: opts.outdir_txt2img_samples...): the `a1111` fixture points it into
# the test's temporary directory, so that no test writes into the working tree.
default_outpath_samples = None
# The text of params.txt: lines 970-975 write it in the first batch after `process_batch`, before `p.sample`.
params_txt = None


@dataclass
class Processed:
    images: list
    latents: torch.Tensor
    infotexts: list
    extra_generation_params: dict
    index_of_first_image: int = 0


def image_noise(shape, seeds):
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


@dataclass(eq=False)
class StableDiffusionProcessing:
    cond: torch.Tensor = None
    uncond: torch.Tensor = None
    width: int = 64
    height: int = 64
    steps: int = 4
    cfg_scale: float = 2.0
    seed: int = 0
    batch_size: int = 1
    n_iter: int = 1
    sampler_name: str = "Euler"
    scripts: Any = None
    script_args: tuple = ()
    override_settings: dict = field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    extra_generation_params: dict = field(default_factory=dict)
    is_hr_pass: bool = False
    sampler: Any = None
    iteration: int = 0
    prompt: str = "a subject"
    outpath_samples: str = field(default_factory=lambda: default_outpath_samples)
    do_not_save_samples: bool = False
    refiner_checkpoint: str = None
    refiner_switch_at: float = None
    refiner_checkpoint_info: Any = None

    def save_samples(self):
        return shared.opts.samples_save and not self.do_not_save_samples

    @property
    def sd_model(self):
        return shared.sd_model

    def close(self):
        self.sampler = None

    def setup_conds(self):
        """The refiner calls it after switching (A1111 re-encodes the prompts with the new model); the
        stand-in's prompts are embeddings already."""

    def conds(self):
        """One prompt for the batch, made after `before_process` as A1111's `setup_conds` is."""
        conds_list = [[(i, 1.0)] for i in range(self.batch_size)]
        rows = lambda t: t[:1].expand(self.batch_size, -1, -1)  # noqa: E731
        return (conds_list, rows(self.cond)), rows(self.uncond)

    def txt2img_image_conditioning(self, x):
        return x.new_zeros(x.shape[0], 5, 1, 1)


@dataclass(eq=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    hr_scale: float = 1.5
    denoising_strength: float = 0.5
    hr_second_pass_steps: int = 0
    hr_checkpoint_name: str = None
    hr_upscaler: str = None
    hr_checkpoint_info: Any = None
    latent_scale_mode: dict = None
    firstpass_image: Any = None
    txt2img_upscale: bool = False

    def init(self):
        if not self.enable_hr:
            return
        if self.hr_checkpoint_name and self.hr_checkpoint_name != "Use same checkpoint":
            self.hr_checkpoint_info = sd_models.get_closet_checkpoint_match(self.hr_checkpoint_name)
            if self.hr_checkpoint_info is None:
                raise Exception(f"Could not find checkpoint with name {self.hr_checkpoint_name}")
            self.extra_generation_params["Hires checkpoint"] = self.hr_checkpoint_info.short_title
        if self.hr_upscaler is not None:
            self.latent_scale_mode = shared.latent_upscale_modes.get(self.hr_upscaler, None)
        else:
            self.latent_scale_mode = shared.latent_upscale_modes.get(shared.latent_upscale_default_mode, "nearest")

    def sample(self, conditioning, unconditional_conditioning, seeds):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        if self.firstpass_image is not None and self.enable_hr:
            samples, decoded_samples = self.given_first_pass()
        else:
            x = image_noise((4, self.height // 8, self.width // 8), seeds)
            self.scripts.process_before_every_sampling(self, x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
            samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning, image_conditioning=self.txt2img_image_conditioning(x))
            if not self.enable_hr:
                return samples
            decoded_samples = None
            if self.latent_scale_mode is None:
                decoded_samples = self.sd_model.decode_first_stage(samples)
        with sd_models.SkipWritingToConfig():
            sd_models.reload_model_weights(info=self.hr_checkpoint_info)
        return self.sample_hr_pass(samples, decoded_samples, conditioning, unconditional_conditioning, seeds)

    def given_first_pass(self):
        """Lines 1310-1330, txt2img's *Upscale* button: no first pass, no hook; the image's array as it is
        (RGBA keeps its four channels), as decoded samples for a pixel upscaler, else encoded."""
        image = np.moveaxis(np.array(self.firstpass_image).astype(np.float32) / 255.0, 2, 0)
        if self.latent_scale_mode is None:
            return None, torch.from_numpy(image[None] * 2.0 - 1.0)
        model = self.sd_model
        return model.get_first_stage_encoding(model.encode_first_stage(torch.from_numpy(image[None]) * 2 - 1)), None

    def sample_hr_pass(self, samples, decoded_samples, conditioning, unconditional_conditioning, seeds):
        if shared.state.interrupted:
            return samples
        self.is_hr_pass = True
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        size = (int(self.height * self.hr_scale) // 8, int(self.width * self.hr_scale) // 8)
        if self.latent_scale_mode is not None:
            mode = self.latent_scale_mode
            samples = torch.nn.functional.interpolate(samples, size=size, mode=mode["mode"], antialias=mode["antialias"])
        else:
            # A pixel upscaler (any name; a bicubic resize here): the first pass images, encoded by the model now loaded.
            images = ((decoded_samples + 1) / 2).clamp(0, 1)
            pixels = (size[0] * 8, size[1] * 8)
            images = torch.nn.functional.interpolate(images, size=pixels, mode="bicubic", antialias=True).clamp(0, 1)
            samples = self.sd_model.get_first_stage_encoding(self.sd_model.encode_first_stage(images * 2 - 1))
        image_conditioning = self.txt2img_image_conditioning(samples)
        noise = image_noise((4, *size), seeds)
        self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, samples, noise, conditioning, unconditional_conditioning,
                                              steps=self.hr_second_pass_steps or self.steps, image_conditioning=image_conditioning)
        self.is_hr_pass = False
        return samples


@dataclass(eq=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list = None
    denoising_strength: float = 0.75
    mask: Any = None
    inpaint_full_res: bool = False
    overlay_images: list = None
    color_corrections: list = None
    resize_mode: int = 0
    mask_round: bool = True
    mask_blur: int = 0
    inpainting_fill: int = 1

    def __post_init__(self):
        self.image_mask = self.mask
        self.mask = None
        self.nmask = None

    def init(self):
        self.sampler = self.create_sampler()
        image_mask = None
        if self.image_mask is not None:
            image_mask = blur_mask(self.image_mask.convert("L"), self.mask_blur)
            image_mask = webui_images.resize_image(self.resize_mode, image_mask, self.width, self.height)
            doubled = np.clip(np.array(image_mask.convert("L")).astype(np.float32) * 2, 0, 255).astype(np.uint8)
            self.mask_for_overlay = Image.fromarray(doubled)
            self.overlay_images = []
        self.color_corrections = [] if shared.opts.img2img_color_correction else None
        imgs = []
        for img in self.init_images:
            image = webui_images.flatten(img, shared.opts.img2img_background_color)
            if self.resize_mode != 3:
                image = webui_images.resize_image(self.resize_mode, image, self.width, self.height)
            if image_mask is not None:
                if self.mask_for_overlay.size != image.size:
                    self.mask_for_overlay = webui_images.resize_image(self.resize_mode, self.mask_for_overlay, *image.size)
                masked = Image.new("RGBa", image.size)
                masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(self.mask_for_overlay.convert("L")))
                self.overlay_images.append(masked.convert("RGBA"))
            if image_mask is not None and self.inpainting_fill != 1:
                image = masked_fill(image, image_mask)
                if self.inpainting_fill == 0:
                    self.extra_generation_params["Masked content"] = "fill"
            if self.color_corrections is not None:
                self.color_corrections.append(np.array(image))
            imgs.append(np.array(image).astype(np.float32) / 255.0)
        if len(imgs) == 1:
            batch = np.repeat(imgs[0][None], self.batch_size, axis=0)
            if self.overlay_images is not None:
                self.overlay_images = self.overlay_images * self.batch_size
        elif len(imgs) <= self.batch_size:
            self.batch_size = len(imgs)
            batch = np.stack(imgs)
        else:
            raise RuntimeError(f"bad number of images passed: {len(imgs)}; expecting {self.batch_size} or less")
        image = torch.from_numpy(batch).permute(0, 3, 1, 2) * 2 - 1
        model = self.sd_model
        self.init_latent = model.get_first_stage_encoding(model.encode_first_stage(image))
        if self.resize_mode == 3:
            self.init_latent = torch.nn.functional.interpolate(self.init_latent, size=(self.height // 8, self.width // 8), mode="bilinear")
        self.image_conditioning = self.init_latent.new_zeros(self.init_latent.shape[0], 5, 1, 1)
        if image_mask is not None:
            size = (self.init_latent.shape[3], self.init_latent.shape[2])
            latmask = np.array(image_mask.convert("RGB").resize(size), dtype=np.float32)[..., 0] / 255
            if self.mask_round:
                latmask = np.around(latmask)
            latmask = torch.from_numpy(np.tile(latmask[None], (self.init_latent.shape[1], 1, 1)))
            self.mask, self.nmask = 1.0 - latmask, latmask
            if self.inpainting_fill == 2:
                noise = image_noise(self.init_latent.shape[1:], self.seed if isinstance(self.seed, list) else [self.seed])
                self.init_latent = self.init_latent * self.mask + noise[:self.init_latent.shape[0]] * self.nmask
                self.extra_generation_params["Masked content"] = "latent noise"
            elif self.inpainting_fill == 3:
                self.init_latent = self.init_latent * self.mask
                self.extra_generation_params["Masked content"] = "latent nothing"

    def create_sampler(self):
        return sd_samplers.create_sampler(self.sampler_name, self.sd_model)

    def sample(self, conditioning, unconditional_conditioning, seeds):
        x = image_noise(self.init_latent.shape[1:], seeds)
        self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning,
                                              image_conditioning=self.image_conditioning)
        if self.mask is not None:
            mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, samples * self.nmask + self.init_latent * self.mask)
            self.scripts.on_mask_blend(self, mba)
            samples = mba.blended_latent
        return samples


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored = {k: getattr(shared.opts, k) for k in p.override_settings}
    try:
        if sd_models.checkpoint_aliases.get(p.override_settings.get("sd_model_checkpoint")) is None:
            p.override_settings.pop("sd_model_checkpoint", None)
            sd_models.reload_model_weights()
        for k, v in p.override_settings.items():
            setattr(shared.opts, k, v)
            if k == "sd_model_checkpoint":
                sd_models.reload_model_weights()
        return process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored.items():
                setattr(shared.opts, k, v)


def fix_seed(p):
    """Lines 797-801 (`get_fixed_seed`): a seed of -1 (or none) drawn once, so that every run uses it."""
    if p.seed is None or p.seed == "" or p.seed == -1:
        p.seed = int(random.randrange(4294967294))


def run_generation(p):
    """modules/txt2img.py / img2img.py (lines 79-83): `process_images` inside `closing(p)`."""
    with closing(p):
        return process_images(p)


def process_images_inner(p):
    if p.refiner_checkpoint not in (None, "", "None", "none"):
        p.refiner_checkpoint_info = sd_models.get_closet_checkpoint_match(p.refiner_checkpoint)
        if p.refiner_checkpoint_info is None:
            raise Exception(f"Could not find checkpoint with name {p.refiner_checkpoint}")
    # Seeds and prompts per image are set before `process` (lines 885-914): a script may replace them there.
    p.all_seeds = list(p.seed) if isinstance(p.seed, list) else [p.seed + i for i in range(p.n_iter * p.batch_size)]
    p.all_prompts = [p.prompt] * len(p.all_seeds)
    if p.scripts is not None:
        p.scripts.process(p)
    output_images, infotexts, latents = [], [], []
    with torch.no_grad():
        p.init()
        sd_unet.apply_unet()
        for n in range(p.n_iter):
            p.iteration = n
            if shared.state.interrupted or shared.state.stopping_generation:
                break
            sd_models.reload_model_weights()  # the hires checkpoint or the refiner may have changed the model
            seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
            p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
            if not p.prompts:
                break
            p.scripts.before_process_batch(p, batch_number=n, seeds=seeds)
            p.scripts.process_batch(p, batch_number=n, seeds=seeds)
            if n == 0:
                global params_txt
                params_txt = infotext(p, seeds[0], p.prompts[0])
            c, uc = p.conds()
            samples = p.sample(conditioning=c, unconditional_conditioning=uc, seeds=seeds)
            ps = scripts.PostSampleArgs(samples)
            p.scripts.post_sample(p, ps)
            samples = ps.samples
            decoded = ((p.sd_model.decode_first_stage(samples) + 1) / 2).clamp(0, 1)
            batch_images = [Image.fromarray((d.permute(1, 2, 0).numpy() * 255).astype(np.uint8)) for d in decoded]
            p.scripts.postprocess_batch(p, batch_images, batch_number=n)
            p.seeds = seeds
            for i, image in enumerate(batch_images):
                add_result(p, image, i, output_images, infotexts)
            latents.append(samples)
    index_of_first_image = 0
    if shared.opts.return_grid and len(output_images) >= 2:
        output_images.insert(0, webui_images.image_grid(output_images, p.batch_size))
        infotexts.insert(0, infotext(p, p.all_seeds[0], p.all_prompts[0]))
        index_of_first_image = 1
    processed = Processed(output_images, torch.cat(latents), infotexts, dict(p.extra_generation_params), index_of_first_image)
    p.scripts.postprocess(p, processed)
    return processed


def blur_mask(mask, sigma):
    """Lines 1620-1630: `cv2.GaussianBlur` along x, then along y, kernel `2 * int(2.5 * sigma + 0.5) + 1`,
    edges mirrored without repeating the border pixel (OpenCV's default), rounded back to 8 bits after each
    pass (OpenCV's fixed-point arithmetic can differ by one level)."""
    if sigma <= 0:
        return mask
    radius = int(2.5 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-x ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    values = np.array(mask, dtype=np.float64)
    for axis in (1, 0):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(values, pad, mode="reflect")
        values = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), axis, padded)
        values = np.round(values)
    return Image.fromarray(values.clip(0, 255).astype(np.uint8))


def masked_fill(image, mask):
    """*fill*'s stand-in: the kept pixels' mean colour blended in by the mask (L, 0..255)."""
    pixels = np.array(image.convert("RGB")).astype(np.float32)
    weight = np.array(mask.convert("L")).astype(np.float32)[..., None] / 255
    kept = (1 - weight).sum()
    mean = (pixels * (1 - weight)).sum(axis=(0, 1)) / kept if kept > 0 else pixels.mean(axis=(0, 1))
    return Image.fromarray((pixels * (1 - weight) + mean * weight).round().astype(np.uint8))


def infotext(p, seed, prompt):
    return ", ".join([f"Seed: {seed}", f"Prompt: {prompt}", *(f"{k}: {v}" for k, v in p.extra_generation_params.items())])


def apply_overlay(image, overlay):
    """v1.10.1 processing.py `apply_overlay` without "Only masked"'s paste location."""
    if overlay is None:
        return image, image.copy()
    original_denoised_image = image.copy()
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB"), original_denoised_image


def add_result(p, image, i, output_images, infotexts):
    """One result of the batch, as the loop of process_images_inner treats it, with its mask images after it."""
    p.batch_index = i
    pp = scripts.PostprocessImageArgs(image)
    p.scripts.postprocess_image(p, pp)
    overlays = getattr(p, "overlay_images", None)
    overlay = overlays[i] if shared.opts.overlay_inpaint and overlays is not None and i < len(overlays) else None
    ppmo = scripts.PostProcessMaskOverlayArgs(i, getattr(p, "mask_for_overlay", None), overlay)
    p.scripts.postprocess_maskoverlay(p, ppmo)
    mask_for_overlay, overlay = ppmo.mask_for_overlay, ppmo.overlay_image
    image, original_denoised_image = apply_overlay(pp.image, overlay)
    pp = scripts.PostprocessImageArgs(image)
    p.scripts.postprocess_image_after_composite(p, pp)
    image = pp.image
    text = infotext(p, p.seeds[i], p.prompts[i])
    if p.save_samples():
        webui_images.save_image(image, p.outpath_samples, "", p.seeds[i], p.prompts[i], shared.opts.samples_format, info=text, p=p)
    infotexts.append(text)
    if shared.opts.enable_pnginfo:
        image.info["parameters"] = text
    output_images.append(image)
    if mask_for_overlay is not None:
        if shared.opts.return_mask:
            output_images.append(mask_for_overlay.convert("RGB"))
        if shared.opts.return_mask_composite:
            area = webui_images.resize_image(2, mask_for_overlay, image.width, image.height).convert("L")
            composite = Image.composite(original_denoised_image.convert("RGBA").convert("RGBa"), Image.new("RGBa", image.size), area)
            output_images.append(composite.convert("RGBA"))
