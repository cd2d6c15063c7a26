"""A Forge generation, as Forge (lllyasviel/stable-diffusion-webui-forge at dfdcbab6) runs one, around a tiny
real ldm model, with the `backend` stand-ins beside this file and A1111's `modules` stand-ins for what
Forge kept of A1111 (scripts, callbacks, images, shared options).

- `ForgeEngine` mirrors backend/diffusion_engine/sd15.py `StableDiffusion` (lines 16-85) and base.py
  `ForgeObjects` (7-20): `forge_objects` (UNet patcher around a `KModel`, VAE), the copies
  `forge_objects_original` / `forge_objects_after_applying_lora`, `is_sd1`, `first_stage_model` None;
  `encode_first_stage` (74-78): NCHW -1..1 to NHWC 0..1, the VAE's encode (a posterior sample), `process_in`.
- `ForgeSampler` mirrors modules/sd_samplers_kdiffusion.py (Forge) `sample` / `sample_img2img` (136-215):
  `sampling_prepare` on the UNet patcher in `forge_objects` at that moment (which loads it, and so merges
  its patches), then Euler over the model's sigmas; `model_wrap_cfg` mirrors sd_samplers_cfg_denoiser.py
  `CFGDenoiser.forward` (156-199) calling `sampling_function`, with the inpaint mask blend.
- `ForgeTxt2Img.sample` mirrors processing.py 1342-1428 and `sample_hr_pass` 1430-1540: `forge_objects` reset
  to the after-Lora copy before the first pass's `process_before_every_sampling`, another hires checkpoint
  loaded in the first one's place, and in the hires pass the hook called, `forge_objects` reset, the hook
  called again, then sampling. `ForgeImg2Img.sample` mirrors
  1844-1870: reset, the hook with `x=p.init_latent`, `sample_img2img(p.init_latent, ...)`.
- `process_images` mirrors processing.py 815-1010: `before_process`, `process`, `init`; per batch the objects
  reset to the original copy, `before_process_batch`, reset to the after-Lora copy, `process_batch`, `p.sample`,
  `post_sample`, decode, per-result hooks, `postprocess`.
Departures: Euler only; sigmas are the model's discrete ones, evenly spaced; prompts are embeddings; the hires
pass upscales the latents bilinearly whatever the upscaler.
"""
from __future__ import annotations

from dataclasses import dataclass

import k_diffusion.sampling
import numpy as np
import torch
from PIL import Image

from backend.modules.k_model import KModel
from backend.modules.k_prediction import Prediction
from backend.nn.vae import IntegratedAutoencoderKL
from backend.patcher.unet import UnetPatcher
from backend.patcher.vae import VAE
from backend.sampling.sampling_function import sampling_cleanup, sampling_function, sampling_prepare
from modules import processing as a1111_processing
from modules import scripts, sd_models, shared
from modules.sd_samplers import setup_img2img_steps
from modules.sd_samplers_common import InterruptedException

CPU = torch.device("cpu")


@dataclass
class ForgeObjects:
    unet: object
    clip: object
    vae: object
    clipvision: object = None

    def shallow_copy(self):
        return ForgeObjects(self.unet, self.clip, self.vae, self.clipvision)


class ForgeEngine:
    """A Forge SD 1.5 engine around a tiny ldm LatentDiffusion's UNet, VAE and noise schedule."""

    def __init__(self, latent_diffusion, checkpoint_info=None):
        predictor = Prediction(latent_diffusion.alphas_cumprod)
        unet = UnetPatcher(KModel(latent_diffusion.model.diffusion_model, predictor), load_device=CPU, offload_device=CPU)
        vae = VAE(IntegratedAutoencoderKL(latent_diffusion.first_stage_model))
        self.forge_objects = ForgeObjects(unet, None, vae)
        self.forge_objects_original = self.forge_objects.shallow_copy()
        self.forge_objects_after_applying_lora = self.forge_objects.shallow_copy()
        family = getattr(checkpoint_info, "config", "sd1")  # the stand-in checkpoint's family (Forge: from the file)
        self.is_sd1, self.is_sd2, self.is_sdxl, self.is_sd3 = family == "sd1", family == "sd2", family == "sdxl", False
        self.first_stage_model = self.cond_stage_model = None
        self.sd_checkpoint_info = checkpoint_info
        self.latent_diffusion = latent_diffusion

    def encode_first_stage(self, x):
        with torch.inference_mode():
            sample = self.forge_objects.vae.encode(x.movedim(1, -1) * 0.5 + 0.5)
            return self.forge_objects.vae.first_stage_model.process_in(sample).to(x)

    def decode_first_stage(self, x):
        with torch.inference_mode():
            sample = self.forge_objects.vae.first_stage_model.process_out(x)
            return (self.forge_objects.vae.decode(sample).movedim(-1, 1) * 2.0 - 1.0).to(x)

    def get_first_stage_encoding(self, x):
        return x


class DenoiserParams:
    def __init__(self, x, image_cond, sigma, text_cond, text_uncond):
        self.x, self.image_cond, self.sigma, self.text_cond, self.text_uncond = x, image_cond, sigma, text_cond, text_uncond


class ModelWrap:
    def __init__(self, sd_model):
        self.inner_model = sd_model
        self.predictor = sd_model.forge_objects.unet.model.predictor


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler):
        super().__init__()
        self.sampler, self.inner_model, self.mask, self.init_latent = sampler, sampler.model_wrap, None, None

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if shared.state.interrupted or shared.state.skipped:
            raise InterruptedException
        (_, cond_rows), uncond_rows = cond, uncond
        params = DenoiserParams(x, image_cond, sigma, cond_rows, uncond_rows)
        denoised, _, _ = sampling_function(self, denoiser_params=params, cond_scale=cond_scale, cond_composition=None)
        if self.mask is not None:
            denoised = denoised * self.nmask + self.init_latent * self.mask
        self.sampler.last_latent = denoised
        return denoised


class ForgeSampler:
    def __init__(self, sd_model):
        self.model_wrap = ModelWrap(sd_model)
        self.model_wrap_cfg = CFGDenoiser(self)
        self.last_latent = None

    def sigmas(self, steps):
        schedule = self.model_wrap.predictor.sigmas
        indexes = torch.linspace(len(schedule) - 1, 0, steps).round().long()
        return torch.cat([schedule[indexes], schedule.new_zeros(1)])

    def launch(self, p, x, sigmas, conditioning, unconditional_conditioning, image_conditioning):
        unet_patcher = self.model_wrap.inner_model.forge_objects.unet
        extra = {"cond": conditioning, "uncond": unconditional_conditioning, "image_cond": image_conditioning,
                 "cond_scale": p.cfg_scale, "s_min_uncond": 0.0}
        self.last_latent = x
        try:
            return k_diffusion.sampling.sample_euler(self.model_wrap_cfg, x, sigmas, extra_args=extra, disable=True)
        except InterruptedException:
            return self.last_latent
        finally:
            sampling_cleanup(unet_patcher)

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        sampling_prepare(self.model_wrap.inner_model.forge_objects.unet, x=x)
        sigmas = self.sigmas(steps or p.steps)
        return self.launch(p, x * sigmas[0], sigmas, conditioning, unconditional_conditioning, image_conditioning)

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        sampling_prepare(self.model_wrap.inner_model.forge_objects.unet, x=x)
        steps, t_enc = setup_img2img_steps(p, steps)
        sigma_sched = self.sigmas(steps)[steps - t_enc - 1:]
        self.model_wrap_cfg.init_latent = x
        return self.launch(p, x + noise * sigma_sched[0], sigma_sched, conditioning, unconditional_conditioning,
                           image_conditioning)


def load(engine):
    """The engine Forge holds (`model_data`, which `shared.sd_model` reads)."""
    shared.sd_model = sd_models.model_data.sd_model = engine


def after_lora(p):
    p.sd_model.forge_objects = p.sd_model.forge_objects_after_applying_lora.shallow_copy()


class ForgeTxt2Img(a1111_processing.StableDiffusionProcessingTxt2Img):
    def sample(self, conditioning, unconditional_conditioning, seeds):
        self.sampler = ForgeSampler(self.sd_model)
        x = a1111_processing.image_noise((4, self.height // 8, self.width // 8), seeds)
        after_lora(self)
        self.scripts.process_before_every_sampling(self, x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning,
                                      image_conditioning=self.txt2img_image_conditioning(x))
        if not self.enable_hr:
            return samples
        first = shared.sd_model
        if self.hr_checkpoint_info is not None and self.hr_checkpoint_info.filename != first.sd_checkpoint_info.filename:
            # 1410-1419: the hires checkpoint loaded in the first one's place (`forge_model_reload`); the next
            # batch's `forge_model_reload` (935) loads the first back.
            load(ForgeEngine(self.hr_checkpoint_info.content(), self.hr_checkpoint_info))
        try:
            return self.sample_hr_pass(samples, conditioning, unconditional_conditioning, seeds)
        finally:
            load(first)

    def sample_hr_pass(self, samples, conditioning, unconditional_conditioning, seeds):
        self.is_hr_pass = True
        self.sampler = ForgeSampler(self.sd_model)
        size = (int(self.height * self.hr_scale) // 8, int(self.width * self.hr_scale) // 8)
        samples = torch.nn.functional.interpolate(samples, size=size, mode="bilinear")
        noise = a1111_processing.image_noise((4, *size), seeds)
        # Forge calls the hook, resets the objects (what the first call did is gone), and calls it again (1509-1526).
        self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=conditioning, uc=unconditional_conditioning)
        after_lora(self)
        self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, samples, noise, conditioning, unconditional_conditioning,
                                              steps=self.hr_second_pass_steps or self.steps,
                                              image_conditioning=self.txt2img_image_conditioning(samples))
        self.is_hr_pass = False
        return samples


class ForgeImg2Img(a1111_processing.StableDiffusionProcessingImg2Img):
    def create_sampler(self):
        return ForgeSampler(self.sd_model)

    def sample(self, conditioning, unconditional_conditioning, seeds):
        x = a1111_processing.image_noise(self.init_latent.shape[1:], seeds)
        after_lora(self)
        self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=x, c=conditioning, uc=unconditional_conditioning)
        denoiser = self.sampler.model_wrap_cfg
        denoiser.mask, denoiser.nmask = self.mask, self.nmask
        return self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning,
                                           image_conditioning=self.image_conditioning)


def process_images(p):
    """One generation, in Forge's order; returns A1111's `Processed` (the same in Forge)."""
    p.scripts.before_process(p)
    p.all_seeds = list(p.seed) if isinstance(p.seed, list) else [p.seed + i for i in range(p.n_iter * p.batch_size)]
    p.all_prompts = [p.prompt] * len(p.all_seeds)
    p.scripts.process(p)
    images, infotexts, latents = [], [], []
    with torch.inference_mode():
        p.init()
    for n in range(p.n_iter):
        p.iteration = n
        engine = p.sd_model
        engine.forge_objects = engine.forge_objects_original.shallow_copy()
        seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
        p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.scripts.before_process_batch(p, batch_number=n, seeds=seeds)
        after_lora(p)
        p.scripts.process_batch(p, batch_number=n, seeds=seeds)
        c, uc = p.conds()
        samples = p.sample(conditioning=c, unconditional_conditioning=uc, seeds=seeds)
        ps = scripts.PostSampleArgs(samples)
        p.scripts.post_sample(p, ps)
        decoded = ((engine.decode_first_stage(ps.samples) + 1) / 2).clamp(0, 1)
        batch = [Image.fromarray((d.permute(1, 2, 0).numpy() * 255).astype(np.uint8)) for d in decoded]
        p.scripts.postprocess_batch(p, batch, batch_number=n)
        p.seeds = seeds
        for i, image in enumerate(batch):
            a1111_processing.add_result(p, image, i, images, infotexts)
        latents.append(ps.samples)
    processed = a1111_processing.Processed(images, torch.cat(latents), infotexts, dict(p.extra_generation_params))
    p.scripts.postprocess(p, processed)
    return processed
