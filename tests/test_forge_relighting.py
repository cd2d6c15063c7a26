"""IC-Light on Forge: the offsets merged by Forge's patcher to the reference's float32 sum, the noise
prediction of Forge's UNet path equal to the reference algorithm's, every UNet call of every pass relit,
and the checkpoint's own weights back for the next plain generation."""
import gc
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from forge_env import forge_img2img, forge_txt2img
from generation_harness import pil, subject
from iclight_a1111.forge.offset_patches import read_patches, relighting_unet
from iclight_a1111.unet.merge import merge_offsets
from iclight_a1111.unet.offset_files import file_source, load_offsets
from tiny_models import ldm_unet, random_offsets, reference_iclight_unet, to_diffusers_state, write_offsets

SETTINGS_SCRIPT = Path(__file__).parents[1] / "scripts" / "iclight_settings.py"


def first_conv_channels(unet):
    """The input channels of every call of the UNet's first conv, while the block runs."""
    calls = []
    handle = unet.input_blocks[0][0].register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[1]))
    return calls, handle


def forge_unet_patcher(unet):
    """Forge's UNet patcher around `unet` (backend/patcher/unet.py, modules/k_model.py), as an engine holds it."""
    from backend.modules.k_model import KModel
    from backend.modules.k_prediction import Prediction
    from backend.patcher.unet import UnetPatcher

    schedule = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2, 0)
    cpu = torch.device("cpu")
    return UnetPatcher(KModel(unet, Prediction(schedule)), load_device=cpu, offload_device=cpu)


@pytest.mark.parametrize("in_channels", [8, 12])
@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_forge_merges_the_offsets_to_the_float32_sum_and_predicts_the_reference_noise(forge, tmp_path, report,
                                                                                        in_channels, layout):
    from backend import memory_management

    unet = ldm_unet(seed=1)
    offsets = random_offsets(unet, in_channels, seed=2)
    path = write_offsets(tmp_path / "iclight.safetensors", offsets, layout)
    released = write_offsets(tmp_path / "released.safetensors", offsets, "diffusers")  # the reference reads this layout
    patcher = forge_unet_patcher(unet)
    expected_weights = merge_offsets(unet, load_offsets(path), arena=False)
    g = torch.Generator().manual_seed(3)
    x, concat = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, in_channels - 4, 8, 8, generator=g)
    t, context = torch.tensor([999.0, 321.0]), torch.randn(2, 77, 768, generator=g)
    with torch.no_grad():
        reference = reference_iclight_unet(to_diffusers_state(unet.state_dict()), released)
        expected = reference(x, t, context, cross_attention_kwargs={"concat_conds": concat}).sample
        del reference
        gc.collect()
        relit = relighting_unet(patcher, read_patches(file_source(path)), concat, batch_size=2)
        memory_management.load_models_gpu([relit])  # Forge merges the patches as it loads the patcher
        merged = dict(relit.model.diffusion_model.named_parameters())
        ours = relit.model.diffusion_model(torch.cat([x, relit.extra_concat_condition], dim=1), t, context=context)
    differing = [k for k, w in expected_weights.items() if not torch.equal(merged[k], w)]
    assert not differing, f"Forge's merge differs from the float32 sum in {len(differing)} weights: {differing[:3]}"
    diff = (ours - expected).abs().max().item()
    report(f"parity on Forge's patcher ({layout} file, {in_channels} channels): max |diff| = {diff:.3g}")
    assert expected.abs().mean() > 1e-2 and diff <= 1e-5, f"the noise prediction differs by {diff:.3g}"


def test_every_unet_call_of_a_forge_txt2img_is_relit_and_plain_comes_back_after(forge):
    from modules import processing

    from forge_flow import process_images

    def plain():
        torch.manual_seed(0)
        return process_images(forge_txt2img(forge, [{"enabled": False}], steps=3, seed=4)).images[0]

    before = plain()
    calls, handle = first_conv_channels(forge.unet)
    try:
        processed = process_images(forge_txt2img(forge, [{"foreground": subject()}], batch_size=2, steps=3, seed=4))
    finally:
        handle.remove()
    assert calls and set(calls) == {8}, f"first-conv input channels per call: {sorted(set(calls))}"
    assert "IC-Light model: iclight_sd15_fc.safetensors" in processed.infotexts[0]
    assert processing is not None
    after = plain()
    assert np.array_equal(np.array(after), np.array(before)), "a plain generation after IC-Light differs from before"
    assert forge.unet.input_blocks[0][0].weight.shape[1] == 4, "the checkpoint's first conv stayed widened"


def test_a_repeated_request_reads_no_file_and_merges_nothing(forge, monkeypatch):
    from backend.patcher import lora

    from forge_flow import process_images
    from iclight_a1111.forge import offset_patches

    reads = []
    read = offset_patches.read_patches
    monkeypatch.setattr(offset_patches, "read_patches", lambda source: reads.append(source.name) or read(source))
    for _ in range(2):
        process_images(forge_txt2img(forge, [{"foreground": subject()}], steps=2))
    merges = [key for key, _ in lora.MERGES]
    assert reads == ["iclight_sd15_fc.safetensors"], f"files read: {reads}"
    assert len(merges) == len(set(merges)) == 686, f"{len(merges)} weights merged over two requests"


def test_unloading_the_checkpoint_gives_back_the_offsets_kept_in_ram(forge, monkeypatch):
    """Forge's `unload_model_weights` (modules/sd_models.py 451-453: `unload_all_models`), as the API and
    Settings' "Unload all models" call it, with scripts/iclight_settings.py loaded as Forge loads it."""
    from backend import memory_management
    from modules import sd_models

    from forge_flow import process_images
    from iclight_a1111.webui import backend_choice

    host = forge.script.HOST
    monkeypatch.setattr(sd_models, "unload_model_weights", lambda sd_model=None, info=None: memory_management.unload_all_models())
    monkeypatch.setattr(backend_choice, "HOSTS", [host])
    spec = importlib.util.spec_from_file_location("iclight_settings_on_forge", SETTINGS_SCRIPT)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    process_images(forge_txt2img(forge, [{"foreground": subject()}], steps=2))
    kept = [weakref.ref(t) for patches in host.kept.entries.values() for (t,) in patches.patches.values()]
    assert len(kept) == 686, f"{len(kept)} offsets kept in RAM after a request"
    sd_models.unload_model_weights()
    gc.collect()
    held = sum(ref() is not None for ref in kept)
    assert held == 0, f"{held} of the {len(kept)} IC-Light offsets still held after unloading the checkpoint"
    calls, handle = first_conv_channels(forge.unet)
    try:
        process_images(forge_txt2img(forge, [{"foreground": subject()}], steps=2))
    finally:
        handle.remove()
    assert calls and set(calls) == {8}, f"first conv inputs per call after the unload: {calls}"

    def unload_at_the_first_call(module, args):
        calls.append(args[0].shape[1])
        if len(calls) == 1:
            sd_models.unload_model_weights()

    calls = []
    handle = forge.unet.input_blocks[0][0].register_forward_pre_hook(unload_at_the_first_call)
    try:
        process_images(forge_txt2img(forge, [{"foreground": subject()}], steps=3))
    finally:
        handle.remove()
    assert calls == [8] * 3, f"an unload during a generation changed its UNet: first conv inputs per call {calls}"


def test_img2img_fc_starts_from_the_light_map_and_the_hires_pass_is_relit_at_its_size(forge):
    from forge_flow import process_images

    calls, handle = first_conv_channels(forge.unet)
    try:
        p = forge_img2img(forge, [{"light": "Left"}], [pil(subject())], steps=2, denoising_strength=0.9)
        process_images(p)
        relit_img2img = list(calls)
        calls.clear()
        p = forge_txt2img(forge, [{"foreground": subject()}], steps=2, enable_hr=True, hr_scale=2.0, hr_upscaler="Latent")
        process_images(p)
    finally:
        handle.remove()
    assert relit_img2img and set(relit_img2img) == {8}
    assert calls and set(calls) == {8}, "a pass of the hires generation was not relit"
