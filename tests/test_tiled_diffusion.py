"""IC-Light beside Tiled Diffusion (stand-in `tests/a1111/tiled_diffusion.py`): every tile and region runs
with its own window of the concat latents, MultiDiffusion and Mixture of Diffusers alike."""
import pytest
import torch

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.errors import IcLightError
from iclight_a1111.webui import host as webui_host
from tiled_diffusion import MIXTURE_OF_DIFFUSERS, MULTI_DIFFUSION, Region, TiledDiffusionScript
from unet_rows import (assert_each_row_has_its_own_latents, assert_each_subject_relit_as_alone, batch, denoise_step, fake_p, first_conv_inputs,
                       latents_mirroring, script_runner, subject_sensitive_model)

METHODS = [MULTI_DIFFUSION, MIXTURE_OF_DIFFUSERS]
LATENT = 16  # a 128x128 canvas, tiles of 8 with overlap 4: 9 tiles
TILE = 8


@pytest.fixture(autouse=True)
def sampler_creation_restored():
    """A generation refused at `p.init` never reaches Tiled Diffusion's `postprocess`, which unhooks it
    (in A1111 its next `process` does): put A1111's sampler creation back for the next test."""
    from modules import sd_samplers

    create_sampler = sd_samplers.create_sampler
    yield
    sd_samplers.create_sampler = create_sampler


def region(batch_size, seed=11):
    """The right half of the canvas with its own prompt (the same for every image, as from the UI)."""
    g = torch.Generator().manual_seed(seed)
    cond, uncond = torch.randn(1, 77, 768, generator=g), torch.randn(1, 77, 768, generator=g)
    return Region(0.5, 0.0, 0.5, 1.0, cond.expand(batch_size, -1, -1), uncond.expand(batch_size, -1, -1))


def tiled_sampler(method, p, **settings):
    """A sampler made while Tiled Diffusion's `process` has hooked sampler creation, as in A1111."""
    from modules import sd_samplers, shared

    script = TiledDiffusionScript(method, tile_w=TILE, tile_h=TILE, overlap=4, **settings)
    script.process(p)
    return script, sd_samplers.create_sampler("Euler", shared.sd_model)


@pytest.mark.parametrize("variant,concat_channels", [("fc", 4), ("fbc", 8)])
@pytest.mark.parametrize("layout", ["tiles", "tiles and a region", "a region alone"])
@pytest.mark.parametrize("method", METHODS)
def test_each_tile_and_region_gets_its_window_of_its_images_concat_latents(a1111, method, layout, variant, concat_channels):
    a1111.activate(variant)
    x, conds_list, cond, uncond = batch(2, LATENT)
    settings = {"tiles": {}, "tiles and a region": {"regions": [region(2)]},
                "a region alone": {"regions": [region(2)], "draw_background": False}}[layout]
    script, sampler = tiled_sampler(method, fake_p(LATENT * 8, LATENT * 8, 2), **settings)
    try:
        webui_host.route_to_active_unet(sampler, latents_mirroring(x, concat_channels))
        with first_conv_inputs(a1111.unet) as calls:
            out = denoise_step(sampler, x, conds_list, cond, uncond)
    finally:
        script.reset()
    expected = {"tiles": {(TILE, TILE)}, "tiles and a region": {(TILE, TILE), (LATENT, TILE)},
                "a region alone": {(LATENT, TILE)}}[layout]
    assert {tuple(c.shape[2:]) for c in calls} == expected, "the UNet calls are not the tiles and regions asked for"
    assert_each_row_has_its_own_latents(calls)
    assert out.shape == x.shape


def relit_latents(p):
    from modules import processing

    return processing.process_images(p).latents


def two_subjects():
    return [pil(subject(LATENT * 8, seed=0)), pil(subject(LATENT * 8, seed=5))]


def tiled_img2img(method, images, seed, settings, model=""):
    p = img2img([{"enabled": True, "model": model, "light": "Left"}], images, batch_size=len(images), width=LATENT * 8,
                height=LATENT * 8, steps=2, denoising_strength=0.9, seed=seed)
    p.scripts = script_runner(TiledDiffusionScript(method, tile_w=TILE, tile_h=TILE, overlap=4, **settings))
    return p


@pytest.mark.parametrize("with_region", [False, True], ids=["tiles", "tiles and a region"])
@pytest.mark.parametrize("method", METHODS)
def test_tiled_batch_of_two_subjects_relights_each_as_if_alone(a1111, method, with_region):
    """Each tile row must carry its own picture's latents: two different subjects in one batch give what
    each gives tiled on its own."""
    settings = lambda n: {"regions": [region(n)]} if with_region else {}  # noqa: E731
    model = subject_sensitive_model(a1111)
    first, second = two_subjects()
    run = lambda images, seed: relit_latents(tiled_img2img(method, images, seed, settings(len(images)), model))  # noqa: E731
    with first_conv_inputs(a1111.unet) as calls:
        assert_each_subject_relit_as_alone(run, first, second, method)
    assert any(tuple(c.shape[2:]) == (TILE, TILE) for c in calls), "Tiled Diffusion did not tile"


@pytest.mark.parametrize("method", METHODS)
def test_tiled_txt2img_runs_its_hires_pass_whole_with_latents_at_the_hires_size(a1111, method):
    p = txt2img([{"enabled": True, "foreground": pil(subject())}], batch_size=2, width=LATENT * 8, height=LATENT * 8,
                steps=2, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent")
    p.scripts = script_runner(TiledDiffusionScript(method, tile_w=TILE, tile_h=TILE, overlap=4))
    with first_conv_inputs(a1111.unet) as calls:
        latents = relit_latents(p)
    sizes = {tuple(c.shape[2:]) for c in calls}
    assert sizes == {(TILE, TILE), (24, 24)}, f"UNet calls at latent sizes {sizes}"
    assert latents.shape == (2, 4, 24, 24)
    wrapper = a1111.sd_model.model
    assert not wrapper._forward_pre_hooks and not wrapper._forward_hooks, "IC-Light's hooks outlived the generation"


@pytest.mark.parametrize("iclight_first", [True, False], ids=["IC-Light script first", "Tiled Diffusion first"])
def test_noise_inversion_is_refused_by_name_before_anything_is_sampled(a1111, iclight_first):
    p = tiled_img2img(MIXTURE_OF_DIFFUSERS, two_subjects()[:1], 3, {})
    p.scripts = script_runner(TiledDiffusionScript(MIXTURE_OF_DIFFUSERS, noise_inversion=True), iclight_first=iclight_first)
    with first_conv_inputs(a1111.unet) as calls, pytest.raises(IcLightError, match="Noise Inversion"):
        relit_latents(p)
    assert not calls, "the UNet ran before the refusal"
