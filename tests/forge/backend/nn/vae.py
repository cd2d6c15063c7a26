"""Mirrors backend/nn/vae.py (Forge dfdcbab6) `IntegratedAutoencoderKL` lines 274-316 around ldm's
`AutoencoderKL` (same encoder, same posterior): `encode(x, regulation)` returns `regulation(posterior)`, or a
sample of it; `process_in` / `process_out` scale by `scaling_factor` after the `shift_factor`."""
import torch


class IntegratedAutoencoderKL(torch.nn.Module):
    def __init__(self, ldm_autoencoder, scaling_factor=0.18215, shift_factor=0.0):
        super().__init__()
        self.autoencoder = ldm_autoencoder
        self.scaling_factor, self.shift_factor = scaling_factor, shift_factor

    def encode(self, x, regulation=None):
        posterior = self.autoencoder.encode(x)
        return regulation(posterior) if regulation is not None else posterior.sample()

    def decode(self, z):
        return self.autoencoder.decode(z)

    def process_in(self, latent):
        return (latent - self.shift_factor) * self.scaling_factor

    def process_out(self, latent):
        return (latent / self.scaling_factor) + self.shift_factor
