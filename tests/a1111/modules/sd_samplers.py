"""Mirrors the k-diffusion sampling of A1111 v1.10.1 for the Euler sampler with the "Automatic"
scheduler: modules/sd_samplers_kdiffusion.py `KDiffusionSampler.sample` / `sample_img2img` and
modules/sd_samplers_common.py `setup_img2img_steps` (img2img_fix_steps off) and `launch_sampling`
(an interrupt returns the last latent)."""
import k_diffusion.sampling

from modules.sd_samplers_cfg_denoiser import CFGDenoiser
from modules.sd_samplers_common import InterruptedException


def setup_img2img_steps(p, steps=None):
    if steps is not None:
        requested_steps = steps
        steps = int(requested_steps / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
        t_enc = requested_steps - 1
    else:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)
    return steps, t_enc


class KDiffusionSampler:
    def __init__(self, sd_model):
        self.model_wrap_cfg = CFGDenoiser(self)
        self.model_wrap = self.model_wrap_cfg.inner_model
        self.last_latent = None

    def launch_sampling(self, p, x, sigmas, extra):
        self.model_wrap_cfg.p = p
        self.last_latent = x
        try:
            return k_diffusion.sampling.sample_euler(self.model_wrap_cfg, x, sigmas, extra_args=extra, disable=True)
        except InterruptedException:
            return self.last_latent

    def get_sigmas(self, p, steps):
        return self.model_wrap.get_sigmas(steps)

    def extra_args(self, p, conditioning, unconditional_conditioning, image_conditioning):
        return {"cond": conditioning, "image_cond": image_conditioning, "uncond": unconditional_conditioning,
                "cond_scale": p.cfg_scale, "s_min_uncond": 0.0}

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps = steps or p.steps
        sigmas = self.get_sigmas(p, steps)
        self.model_wrap_cfg.total_steps = steps
        x = x * sigmas[0]
        extra = self.extra_args(p, conditioning, unconditional_conditioning, image_conditioning)
        return self.launch_sampling(p, x, sigmas, extra)

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)
        sigma_sched = sigmas[steps - t_enc - 1:]
        self.model_wrap_cfg.total_steps = t_enc + 1
        xi = x + noise * sigma_sched[0]
        extra = self.extra_args(p, conditioning, unconditional_conditioning, image_conditioning)
        return self.launch_sampling(p, xi, sigma_sched, extra)


def create_sampler(name, model):
    if name != "Euler":
        raise ValueError(f"the test stand-in has only the Euler sampler, not {name!r}")
    return KDiffusionSampler(model)
