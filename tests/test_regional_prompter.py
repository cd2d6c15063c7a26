"""IC-Light beside Regional Prompter (stand-in `tests/a1111/regional_prompter.py`): in Latent mode the UNet
sees each image once per area, reordered by area; in Attention mode only cross-attention changes. Every
UNet row must still get the concat latents of its own image."""
import pytest
import torch

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.webui import host as webui_host
from regional_prompter import RegionalPrompterScript
from unet_rows import (assert_each_row_has_its_own_latents, assert_each_subject_relit_as_alone, batch, denoise_step, fake_p, first_conv_inputs, latents_mirroring,
                       script_runner, subject_sensitive_model)

AREAS = 2


@pytest.fixture
def restored_opts():
    from modules import script_callbacks, shared

    saved, errors = vars(shared.opts).copy(), len(script_callbacks.reported_errors)
    yield shared.opts
    vars(shared.opts).update(saved)
    assert len(script_callbacks.reported_errors) == errors, script_callbacks.reported_errors[-1]


def area_conds(seed=21):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 77, 768, generator=g) for _ in range(AREAS)]


@pytest.mark.parametrize("latent_size", [8, 16], ids=["first pass", "hires pass"])
@pytest.mark.parametrize("variant,concat_channels", [("fc", 4), ("fbc", 8)])
def test_latent_mode_rows_reordered_by_area_keep_their_own_images_latents(a1111, restored_opts, variant, concat_channels, latent_size):
    from modules import sd_samplers, shared

    a1111.activate(variant)
    x, _, _, uncond = batch(2, latent_size)
    script = RegionalPrompterScript("Latent", area_conds())
    p = fake_p(64, 64, 2)
    p.uncond = uncond
    script.process(p)
    (conds_list, cond), uncond = p.conds()
    sampler = sd_samplers.create_sampler("Euler", shared.sd_model)
    try:
        webui_host.route_to_active_unet(sampler, latents_mirroring(x, concat_channels))
        with first_conv_inputs(a1111.unet) as calls:
            out = denoise_step(sampler, x, conds_list, cond, uncond)
    finally:
        script.postprocess(p, None)
    assert len(calls) == AREAS + 1, f"{len(calls)} UNet calls: Latent mode runs one per area and one for the uncond rows"
    assert_each_row_has_its_own_latents(calls)
    assert out.shape == x.shape


def relit(p, *others):
    from modules import processing

    p.scripts = script_runner(*others)
    return processing.process_images(p).latents


def two_subjects_img2img(images, seed, model):
    return img2img([{"enabled": True, "model": model, "light": "Left"}], images, batch_size=len(images), steps=2,
                   denoising_strength=0.9, seed=seed)


@pytest.mark.parametrize("mode", ["Latent", "Attention"])
def test_batch_of_two_subjects_relights_each_as_if_alone(a1111, restored_opts, mode):
    model = subject_sensitive_model(a1111)
    first, second = pil(subject(seed=0)), pil(subject(seed=5))
    run = lambda images, seed: relit(two_subjects_img2img(images, seed, model), RegionalPrompterScript(mode, area_conds()))  # noqa: E731
    assert_each_subject_relit_as_alone(run, first, second, f"{mode} mode")
    plain = relit(two_subjects_img2img([first, second], 3, model))
    assert (plain - run([first, second], 3)).abs().max() > 1e-3, f"Regional Prompter's {mode} mode changed nothing"


@pytest.mark.parametrize("mode", ["Latent", "Attention"])
def test_txt2img_batch_of_two_with_hires_fix_gets_its_latents_in_every_row(a1111, restored_opts, mode):
    p = txt2img([{"enabled": True, "foreground": pil(subject())}], batch_size=2, steps=2, enable_hr=True, hr_scale=2,
                hr_upscaler="Latent")
    routed = []
    route = webui_host.A1111Host.route
    with first_conv_inputs(a1111.unet) as calls:
        webui_host.A1111Host.route = lambda self, p, latents: (routed.append(latents), route(self, p, latents))
        try:
            latents = relit(p, RegionalPrompterScript(mode, area_conds()))
        finally:
            webui_host.A1111Host.route = route
    assert latents.shape == (2, 4, 16, 16)
    by_size = {tuple(r.shape[2:]): r for r in routed}
    assert set(by_size) == {(8, 8), (16, 16)}, "IC-Light did not route latents for both passes"
    for n, call in enumerate(calls):
        own = by_size[tuple(call.shape[2:])]
        own = own.expand(call.shape[0], -1, -1, -1) if own.shape[0] == 1 else own
        for row in range(call.shape[0]):
            assert any(torch.equal(call[row, 4:], own[i]) for i in range(own.shape[0])), (
                f"{mode} mode, UNet call {n} row {row}: concat latents of no image of this pass"
            )
