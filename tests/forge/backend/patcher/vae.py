"""Mirrors backend/patcher/vae.py (Forge dfdcbab6) `VAE` lines 60-191: its `first_stage_model`, a `ModelPatcher`
around it, `device`, `vae_dtype`, `memory_used_encode`; `encode` takes NHWC pixels in 0..1, maps them as
`2x - 1` in the VAE's dtype and returns the posterior as the patcher's `model_vae_regulation` makes it (a
sample when none), unscaled; `decode` the other way, NHWC in 0..1. Departures: no tiling, one batch."""
import torch

from backend import memory_management
from backend.patcher.base import ModelPatcher


class VAE:
    def __init__(self, model, device=torch.device("cpu"), dtype=torch.float32):
        self.first_stage_model = model.eval()
        self.device, self.vae_dtype = device, dtype
        self.latent_channels, self.downscale_ratio = 4, 8
        self.output_device = memory_management.intermediate_device()
        self.memory_used_encode = lambda shape, dtype: 1767 * shape[2] * shape[3] * memory_management.dtype_size(dtype)
        self.patcher = ModelPatcher(self.first_stage_model, load_device=device, offload_device=device)

    def encode(self, pixel_samples):
        regulation = self.patcher.model_options.get("model_vae_regulation", None)
        pixels = pixel_samples.movedim(-1, 1)
        memory_management.load_models_gpu([self.patcher])
        pixels_in = (2. * pixels - 1.).to(self.vae_dtype).to(self.device)
        return self.first_stage_model.encode(pixels_in, regulation).to(self.output_device).float()

    def decode(self, samples_in):
        memory_management.load_models_gpu([self.patcher])
        pixels = self.first_stage_model.decode(samples_in.to(self.vae_dtype).to(self.device))
        return torch.clamp((pixels + 1.0) / 2.0, min=0.0, max=1.0).to(self.output_device).float().movedim(1, -1)
