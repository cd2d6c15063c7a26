"""Concat latents reach the right UNet rows for every batch layout A1111 v1.10.1's CFGDenoiser builds.

Two checks per layout: every UNet call's concat rows are the latents of the image whose noisy latent
sits in that row; and the denoised batch equals each image denoised on its own.
"""
from types import SimpleNamespace

import pytest
import torch

from iclight_a1111.webui import host as webui_host
from iclight_a1111.errors import IcLightFault

SIGMA = 2.0
CFG = 3.0


@pytest.fixture
def opts():
    from modules import shared

    saved = vars(shared.opts).copy()
    yield shared.opts
    vars(shared.opts).update(saved)


def activate(a1111, variant):
    return a1111.activate(variant)


def record_unet_rows(unet, calls):
    """Record each UNet call's (x rows, concat rows) as the first conv receives them (a pre-hook
    registered after IC-Light's runs after it); removed when the IC-Light UNet is deactivated."""
    channels = 4

    def record(conv, args):
        calls.append((args[0][:, :channels].clone(), args[0][:, channels:].clone()))

    handle = unet.checkpoint.module.input_blocks[0][0].register_forward_pre_hook(record)
    deactivate = unet.deactivate

    def deactivate_and_unhook(*args, **kwargs):
        handle.remove()
        deactivate(*args, **kwargs)

    unet.deactivate = deactivate_and_unhook


def denoise(a1111, x, conds_list, cond, uncond, latents, step=0, s_min_uncond=0.0, total_steps=10):
    from modules.sd_samplers_cfg_denoiser import CFGDenoiser

    denoiser = CFGDenoiser(SimpleNamespace(), total_steps)
    denoiser.step = step
    webui_host.route_to_active_unet(SimpleNamespace(model_wrap_cfg=denoiser), latents)
    sigma = torch.full((x.shape[0],), SIGMA)
    placeholder = x.new_zeros(x.shape[0], 5, 1, 1)  # what A1111 passes as image_cond for SD 1.x
    with torch.no_grad():
        return denoiser(x, sigma, uncond=uncond, cond=(conds_list, cond), cond_scale=CFG,
                        s_min_uncond=s_min_uncond, image_cond=placeholder)


def make_batch(repeats, cond_tokens=77, uncond_tokens=77, concat_channels=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(repeats)
    x = torch.randn(n, 4, size, size, generator=g)
    latents = torch.randn(n, concat_channels, size, size, generator=g)
    cond = torch.randn(sum(repeats), cond_tokens, 768, generator=g)
    uncond = torch.randn(n, uncond_tokens, 768, generator=g)
    conds_list, row = [], 0
    for r in repeats:
        conds_list.append([(row + k, 1.0 / r) for k in range(r)])
        row += r
    return x, conds_list, cond, uncond, latents


def single_image(i, x, conds_list, cond, uncond, latents):
    rows = [c for c, _ in conds_list[i]]
    sub_conds = [[(k, w) for k, (_, w) in enumerate(conds_list[i])]]
    return x[i:i + 1], sub_conds, cond[rows], uncond[i:i + 1], latents[i:i + 1]


def assert_rows_aligned(calls, x, latents):
    c_in = 1 / (SIGMA ** 2 + 1) ** 0.5  # k-diffusion's input scaling for sigma_data = 1
    assert calls, "the IC-Light UNet was never called"
    for call, (x_rows, concat_rows) in enumerate(calls):
        for r in range(x_rows.shape[0]):
            image = min(range(x.shape[0]), key=lambda i: (x_rows[r] - x[i] * c_in).abs().max().item())
            assert torch.allclose(x_rows[r], x[image] * c_in, atol=1e-5), f"call {call} row {r}: noisy latent of no image"
            assert torch.equal(concat_rows[r], latents[image]), (
                f"call {call} row {r}: holds image {image}'s noisy latent but not its concat latents"
            )


LAYOUTS = {
    "batch of 3": dict(repeats=[1, 1, 1]),
    "AND sub-prompts 2/1/3": dict(repeats=[2, 1, 3]),
    "batch_cond_uncond off": dict(repeats=[1, 2, 1], opts={"batch_cond_uncond": False}),
    "prompt longer than negative": dict(repeats=[1, 1], cond_tokens=154),
    "prompt longer than negative, batch_cond_uncond off": dict(repeats=[2, 1], cond_tokens=154, opts={"batch_cond_uncond": False}),
    "NGMS skips uncond": dict(repeats=[1, 2], step=1, s_min_uncond=SIGMA + 1),
    "NGMS skips uncond, batch_cond_uncond off": dict(repeats=[1, 1, 1], step=1, s_min_uncond=SIGMA + 1, opts={"batch_cond_uncond": False}),
    "skip_early_cond": dict(repeats=[2, 1], opts={"skip_early_cond": 0.5}),
    "skip_early_cond, prompt longer than negative": dict(repeats=[1, 1], cond_tokens=154, opts={"skip_early_cond": 0.5}),
}


@pytest.mark.parametrize("variant,concat_channels", [("fc", 4), ("fbc", 8)])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_concat_latents_follow_each_image_through_cfg_batch_layout(a1111, opts, layout, variant, concat_channels):
    spec = LAYOUTS[layout]
    vars(opts).update(spec.get("opts", {}))
    unet = activate(a1111, variant)
    calls = []
    record_unet_rows(unet, calls)
    batch = make_batch(spec["repeats"], spec.get("cond_tokens", 77), concat_channels=concat_channels)
    kwargs = dict(step=spec.get("step", 0), s_min_uncond=spec.get("s_min_uncond", 0.0))

    together = denoise(a1111, *batch, **kwargs)
    assert_rows_aligned(calls, batch[0], batch[4])
    for i in range(len(spec["repeats"])):
        alone = denoise(a1111, *single_image(i, *batch), **kwargs)
        diff = (together[i] - alone[0]).abs().max().item()
        assert diff < 1e-4, f"{layout}: image {i} denoised in the batch differs from alone by {diff:.3g}"


def test_single_foreground_is_shared_by_the_whole_batch(a1111, opts):
    activate(a1111, "fc")
    x, conds_list, cond, uncond, latents = make_batch([1, 1, 1])
    shared_latent = latents[:1]
    together = denoise(a1111, x, conds_list, cond, uncond, shared_latent)
    explicit = denoise(a1111, x, conds_list, cond, uncond, shared_latent.expand(3, -1, -1, -1))
    assert torch.equal(together, explicit), "one foreground row was not used for every image of the batch"


def test_hires_pass_without_latents_at_its_size_is_refused(a1111, opts):
    activate(a1111, "fc")
    x, conds_list, cond, uncond, _ = make_batch([1, 1], size=16)
    low_res = torch.randn(2, 4, 8, 8)
    with pytest.raises(IcLightFault, match=r"encoded for a 64x64 image but this sampling pass works at 128x128"):
        denoise(a1111, x, conds_list, cond, uncond, low_res)
    hires = torch.randn(2, 4, 16, 16)
    out = denoise(a1111, x, conds_list, cond, uncond, hires)
    assert out.shape == x.shape


def test_latents_for_another_batch_size_are_refused(a1111, opts):
    activate(a1111, "fc")
    x, conds_list, cond, uncond, latents = make_batch([1, 1, 1])
    with pytest.raises(IcLightFault, match="latents for 2 images but the batch has 3"):
        denoise(a1111, x, conds_list, cond, uncond, latents[:2])


def test_unet_called_without_routed_latents_raises_instead_of_generating(a1111):
    unet = activate(a1111, "fc")
    x = torch.randn(1, 4, 8, 8)
    with pytest.raises(IcLightFault, match="called without foreground latents"):
        a1111.sd_model.apply_model(x, torch.tensor([500]), {"c_crossattn": [torch.randn(1, 77, 768)]})
    assert unet.backup is not None
