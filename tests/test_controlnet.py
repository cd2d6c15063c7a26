"""IC-Light together with ControlNet, whose hook sets `forward` on the UNet object itself."""
import pytest
import torch

import controlnet_hook
from generation_harness import pil, subject, img2img
from tiny_models import TINY_UNET, ldm_unet, parameter_fingerprint


def relight(a1111, control_weight=None, control_model=None):
    """One img2img fc generation; with a control weight, under the ControlNet stand-in's hook."""
    from modules import processing

    p = img2img([{"enabled": True, "light": "Left"}], [pil(subject())], steps=3, denoising_strength=0.9)
    if control_weight is not None:
        hint = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
        controlnet_hook.hook(a1111.unet, control_model, hint, control_weight)
    try:
        return processing.process_images(p).latents
    finally:
        controlnet_hook.restore(a1111.unet)


@pytest.fixture
def control_model():
    return controlnet_hook.ControlModel(ldm_unet(TINY_UNET, seed=21))


def test_controlnet_forward_on_the_unet_object_gives_the_same_latents_as_plain_iclight(a1111, control_model):
    plain = relight(a1111)
    hooked = relight(a1111, control_weight=0.0, control_model=control_model)
    assert torch.equal(plain, hooked), f"max |diff| {(plain - hooked).abs().max():.3g} with a zero-weight ControlNet"


def test_controlnet_acts_on_iclight_and_its_control_model_gets_the_latent_without_the_concat(a1111, control_model):
    """Per UNet call, the checkpoint's first conv gets x with IC-Light's latents appended, and the
    control model that very x alone."""
    before = parameter_fingerprint(a1111.unet)
    plain = relight(a1111)
    first_conv_inputs = []
    record = a1111.unet.input_blocks[0][0].register_forward_hook(lambda m, args, out: first_conv_inputs.append(args[0]))
    try:
        controlled = relight(a1111, control_weight=1.0, control_model=control_model)
    finally:
        record.remove()
    assert not torch.allclose(plain, controlled), "the ControlNet residuals changed nothing"
    seen = control_model.seen_x
    assert len(seen) == len(first_conv_inputs) > 0, f"{len(seen)} control model calls for {len(first_conv_inputs)} UNet calls"
    for x, unet_x in zip(seen, first_conv_inputs):
        assert x.shape[1] == 4 and unet_x.shape[1] == 8, f"control model got {x.shape[1]} channels, the UNet {unet_x.shape[1]}"
        assert torch.equal(unet_x[:, :4], x), "the control model and the UNet got different latents"
    assert parameter_fingerprint(a1111.unet) == before
    assert not a1111.unet.input_blocks[0][0]._forward_pre_hooks, "the first-conv hook outlived the generation"
