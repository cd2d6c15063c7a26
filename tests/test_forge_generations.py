"""Forge generations beside what users combine with IC-Light: fbc, a plain hires pass, Lora patches on the
same weights; and what Forge cannot do refused by name, nothing changed."""
import pytest
import torch

from forge_env import forge_txt2img
from generation_harness import subject
from iclight_a1111.errors import IcLightError, ModelFileFault
from test_forge_relighting import first_conv_channels
from tiny_models import parameter_fingerprint, random_offsets, write_offsets


def relit_channels(forge, p):
    from forge_flow import process_images

    calls, handle = first_conv_channels(forge.unet)
    try:
        process_images(p)
    finally:
        handle.remove()
    return calls


def test_fbc_on_forge_appends_subject_and_background(forge):
    calls = relit_channels(forge, forge_txt2img(forge, [{"model": "iclight_sd15_fbc.safetensors", "foreground": subject(),
                                                        "background_source": "Left"}], steps=2))
    assert calls and set(calls) == {12}


def test_a_plain_hires_pass_on_forge_runs_the_checkpoint_as_it_is(forge):
    p = forge_txt2img(forge, [{"foreground": subject(), "hires_pass": "Off"}], steps=2, enable_hr=True, hr_scale=2.0,
                      hr_upscaler="Latent")
    calls = relit_channels(forge, p)
    first_pass = 2  # Euler, 2 steps: one UNet call each, cond and uncond rows together
    assert calls[:first_pass] == [8] * first_pass and calls[first_pass:] and set(calls[first_pass:]) == {4}, \
        f"first conv inputs per call: {calls}"
    assert p.extra_generation_params.get("IC-Light hires pass") == "Off"


def test_a_lora_on_the_same_weights_is_merged_with_iclight_and_taken_out_after(forge):
    """Forge's Lora patches the after-Lora copy of the UNet patcher; IC-Light's clone carries them on, and
    Forge merges both into each weight (a Lora on the first conv too: the IC-Light diff widens it after)."""
    from backend.patcher.lora import MERGES

    from forge_flow import process_images

    engine = forge.engine
    before = parameter_fingerprint(forge.unet)
    lora = engine.forge_objects_original.unet.clone()
    step = {"diffusion_model.input_blocks.0.0.weight": (torch.full((32, 4, 3, 3), 1e-3),),
            "diffusion_model.out.2.bias": (torch.full((4,), 1e-3),)}
    assert len(lora.add_patches(filename="lora_style.safetensors", patches=step)) == 2
    engine.forge_objects_after_applying_lora.unet = lora
    calls = relit_channels(forge, forge_txt2img(forge, [{"foreground": subject()}], steps=2))
    assert set(calls) == {8}
    widened = [shape for key, shape in MERGES if key == "diffusion_model.input_blocks.0.0.weight"]
    assert widened == [(32, 8, 3, 3)], f"first conv merges: {widened}"
    engine.forge_objects_after_applying_lora.unet = engine.forge_objects_original.unet
    process_images(forge_txt2img(forge, [{"enabled": False}], steps=2))
    assert parameter_fingerprint(forge.unet) == before, "IC-Light or the Lora stayed in the checkpoint's weights"


@pytest.mark.parametrize("family,hires_pass,hires_relit", [("sdxl", "Automatic", False), ("sd1", "On", True)])
def test_a_hires_checkpoint_on_forge_finishes_plainly_or_relit_as_the_hires_pass_says(forge, family, hires_pass,
                                                                                         hires_relit):
    """SDXL finish (Forge loads the hires checkpoint in the first one's place, and its model data lists no
    other loaded model), and IC-Light asked on another SD 1.x checkpoint's hires pass."""
    hires_calls = []

    def watch(model):
        conv = model.model.diffusion_model.input_blocks[0][0]
        conv.register_forward_pre_hook(lambda module, args: hires_calls.append(args[0].shape[1]))

    forge.a1111.add_checkpoint("finish", seed=9, config=family, on_load=watch)
    p = forge_txt2img(forge, [{"foreground": subject(), "hires_pass": hires_pass}], steps=2, enable_hr=True,
                      hr_scale=2.0, hr_upscaler="Lanczos", hr_checkpoint_name="finish")
    first_calls = relit_channels(forge, p)
    assert first_calls and set(first_calls) == {8}, f"first pass first-conv inputs per call: {first_calls}"
    expected = 8 if hires_relit else 4
    assert hires_calls and set(hires_calls) == {expected}, f"hires pass first-conv inputs per call: {hires_calls}"
    assert p.extra_generation_params.get("IC-Light hires pass") == ("On" if hires_relit else "Off")
    assert p.extra_generation_params.get("Hires checkpoint") == "finish"


def sdxl_engine(forge):
    forge.engine.is_sd1, forge.engine.is_sdxl = False, True
    return forge_txt2img(forge, [{"foreground": subject()}], steps=2)


def refiner(forge):
    return forge_txt2img(forge, [{"foreground": subject()}], steps=2, refiner_checkpoint="sd15-refiner", refiner_switch_at=0.5)


def file_for_another_unet(forge):
    offsets = random_offsets(forge.unet, 8, seed=3)
    offsets["out.2.weight"] = offsets["out.2.weight"][:, :16].clone()
    write_offsets(forge.model_dir / "misshaped_relight.safetensors", offsets, "ldm")
    return forge_txt2img(forge, [{"model": "misshaped_relight.safetensors", "foreground": subject()}], steps=2)


@pytest.mark.parametrize("make_p,refusal,status", [
    (sdxl_engine, r"SD 1\.x checkpoints only \(this one is an SDXL checkpoint\)", 400),
    (refiner, r"Forge's refiner swaps the UNet.*set Refiner off", 400),
    (file_for_another_unet, r"does not fit.*wrong shapes: out\.2\.weight", 500),
])
def test_what_forge_cannot_relight_is_refused_by_name_and_nothing_changes(forge, make_p, refusal, status):
    from forge_flow import process_images

    before = parameter_fingerprint(forge.unet)
    with pytest.raises((IcLightError, ModelFileFault), match=refusal) as refused:
        process_images(make_p(forge))
    assert refused.value.status_code == status
    assert parameter_fingerprint(forge.unet) == before


def test_a_quantized_unet_on_forge_is_refused_naming_the_storage(forge):
    """Forge merges into NF4/FP4 (bitsandbytes) and GGUF weights by quantizing the sum into the same storage
    (backend/patcher/lora.py at dfdcbab6, 433-439), which cannot hold a wider first conv."""
    from forge_flow import process_images

    weight = forge.unet.middle_block[0].in_layers[2].weight
    weight.bnb_quantized = True
    try:
        with pytest.raises(IcLightError, match="stored quantized .*NF4, FP4 or GGUF"):
            process_images(forge_txt2img(forge, [{"foreground": subject()}], steps=2))
    finally:
        del weight.bnb_quantized
