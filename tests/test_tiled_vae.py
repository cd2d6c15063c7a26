"""IC-Light beside Tiled VAE (stand-in `tests/a1111/tiled_vae.py`): IC-Light's own encodes and A1111's decodes
go through its hooks on the VAE's encoder and decoder."""
import pytest
import torch

from generation_harness import img2img, pil, subject, txt2img
from tiled_vae import TiledVAEScript
from unet_rows import script_runner


def relit(p, *others, iclight_first=True):
    from modules import processing

    p.scripts = script_runner(*others, iclight_first=iclight_first)
    torch.manual_seed(0)  # A1111 encodes the img2img pictures with a posterior sample
    return processing.process_images(p).latents


def relight_img2img(**kwargs):
    return img2img([{"enabled": True, "model": "iclight_sd15_fbc.safetensors", "background_source": "Left"}],
                   [pil(subject(seed=0)), pil(subject(seed=5))], batch_size=2, steps=2, denoising_strength=0.9, **kwargs)


@pytest.mark.parametrize("iclight_first", [True, False], ids=["IC-Light script first", "Tiled VAE first"])
def test_encodes_and_decodes_go_through_tiled_vae_and_match_untiled_below_its_tile_size(a1111, iclight_first):
    """fbc img2img encodes the subjects, the background and (A1111) the pictures; A1111 decodes the
    results. Below the tile size Tiled VAE runs the VAE untouched: the same latents as without it."""
    plain = relit(relight_img2img())
    vae = TiledVAEScript()
    tiled = relit(relight_img2img(), vae, iclight_first=iclight_first)
    encodes, decodes = vae.encoder_hook.calls, vae.decoder_hook.calls
    # A1111's pictures, IC-Light's subjects and its background: three encodes of the 64x64 images.
    assert encodes.count((2, 3, 64, 64)) + encodes.count((1, 3, 64, 64)) == 3, f"encoder calls {encodes}"
    assert decodes == [(2, 4, 8, 8)], f"decoder calls {decodes}"
    assert torch.equal(plain, tiled), f"max |diff| {(plain - tiled).abs().max():.3g} with Tiled VAE below its tile size"


def test_large_hires_pass_with_tiled_vae_runs_with_tiled_encodes_and_decodes(a1111):
    """txt2img fc with a pixel upscaler: the first pass is decoded, the upscaled image encoded, IC-Light's
    subject encoded at the hires size, and the result decoded, all larger than Tiled VAE's tiles."""
    vae = TiledVAEScript(encoder_tile_size=64, decoder_tile_size=8)
    p = txt2img([{"enabled": True, "foreground": pil(subject(256, seed=2))}], batch_size=2, steps=2, enable_hr=True,
                hr_scale=4, hr_upscaler="Lanczos")
    latents = relit(p, vae)
    assert latents.shape == (2, 4, 32, 32)
    assert vae.encoder_hook.tiled_calls >= 2, f"encoder calls {vae.encoder_hook.calls}: the hires encodes were not tiled"
    assert vae.decoder_hook.tiled_calls >= 1, f"decoder calls {vae.decoder_hook.calls}: the hires result was not tiled"
    assert torch.isfinite(latents).all()
