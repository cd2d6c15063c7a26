"""The reference IC-Light algorithm as a sampler: diffusers UNet and VAE (weights carried over from
the ldm model by diffusers' converters), reference image handling, Euler steps over given sigmas
with classifier-free guidance, the concat latents appended to both halves of the batch."""
from __future__ import annotations

import numpy as np
import torch
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from k_diffusion.external import CompVisDenoiser
from PIL import Image

from tiny_models import diffusers_autoencoder_kl, reference_iclight_unet, to_diffusers_state

TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(32, 64, 64, 64),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    sample_size=64, scaling_factor=0.18215,
)


def reference_resize_and_center_crop(image, width, height):
    """The reference demo's resize_and_center_crop (float crop box handed to PIL)."""
    pil = Image.fromarray(image)
    scale = max(width / pil.width, height / pil.height)
    rw, rh = int(round(pil.width * scale)), int(round(pil.height * scale))
    resized = pil.resize((rw, rh), Image.LANCZOS)
    box = ((rw - width) / 2, (rh - height) / 2, (rw + width) / 2, (rh + height) / 2)
    return np.array(resized.crop(box))


def reference_fc_left_light(width, height):
    """The reference demo's LEFT light: 255 at the left edge to 0 at the right."""
    image = np.tile(np.linspace(255, 0, width), (height, 1))
    return np.stack((image,) * 3, axis=-1).astype(np.uint8)


def diffusers_vae(sd_model):
    vae = diffusers_autoencoder_kl()(**TINY_VAE)
    state = {"first_stage_model." + k: v for k, v in sd_model.first_stage_model.state_dict().items()}
    vae.load_state_dict(convert_ldm_vae_checkpoint(state, TINY_VAE), strict=True)
    return vae.eval().requires_grad_(False)


class ReferencePipeline:
    def __init__(self, sd_model, offsets_file):
        unet_state = to_diffusers_state(sd_model.model.diffusion_model.state_dict())
        self.unet = reference_iclight_unet(unet_state, offsets_file)
        self.vae = diffusers_vae(sd_model)
        self.schedule = CompVisDenoiser(sd_model)  # the same sigmas and sigma -> timestep map

    def encode(self, images, width, height):
        crops = np.stack([reference_resize_and_center_crop(i, width, height) for i in images])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.0 - 1.0
        with torch.no_grad():
            return self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor

    def sigmas(self, steps):
        return self.schedule.get_sigmas(steps)

    def sample(self, x, sigmas, concat, cond, uncond, cfg):
        """Euler over `sigmas` from `x` (already noised), guidance `uncond + cfg * (cond - uncond)`."""
        with torch.no_grad():
            for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
                c_in = 1 / (sigma ** 2 + 1) ** 0.5
                t = self.schedule.sigma_to_t(sigma).expand(2 * x.shape[0])
                eps = self.unet(torch.cat([x, x]) * c_in, t, torch.cat([cond, uncond]),
                                cross_attention_kwargs={"concat_conds": concat}).sample
                denoised_cond, denoised_uncond = (torch.cat([x, x]) - eps * sigma).chunk(2)
                denoised = denoised_uncond + cfg * (denoised_cond - denoised_uncond)
                x = x + (x - denoised) / sigma * (sigma_next - sigma)
        return x
