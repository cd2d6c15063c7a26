"""Images into latents through Forge's VAE, the IC-Light reference's way.

Forge's `VAE.encode` (backend/patcher/vae.py) maps pixels as `2x - 1` in the VAE's dtype and returns a
sample of the posterior; the reference maps them as `x / 127 - 1` and takes the posterior's mode. So
the VAE is loaded as Forge loads it for an encode (`memory_management.load_models_gpu`), and its model
encodes with the mode as regulation (backend/nn/vae.py `IntegratedAutoencoderKL.encode`), scaled by its
own `process_in`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from backend import memory_management

from ..images.vae_encoding import vae_input


def encode_latents(vae: Any, images: Sequence[np.ndarray]) -> torch.Tensor:
    """Latents of uint8 HxWx3 images: the mode of the VAE's posterior, scaled as Forge scales latents."""
    pixels = vae_input(images)
    memory_management.load_models_gpu([vae.patcher], memory_required=vae.memory_used_encode(pixels.shape, vae.vae_dtype))
    model = vae.first_stage_model
    with torch.no_grad():
        posterior_mode = model.encode(pixels.to(vae.device, vae.vae_dtype), regulation=lambda posterior: posterior.mode())
        return model.process_in(posterior_mode)
