"""The checkpoint's UNet is left exactly as it was: after cycles, after errors, under Lora."""
import pytest
import torch

from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.errors import IcLightError, ModelFileFault
from iclight_a1111.unet.offset_files import offsets_from_tensors
from tiny_models import LDM_UNET_FORWARD, ldm_unet, memory_source, parameter_fingerprint, random_offsets


def unet_call(a1111, batch=2, size=8):
    x = torch.randn(batch, 4, size, size)
    return a1111.sd_model.model.diffusion_model(x, torch.tensor([500] * batch), context=torch.randn(batch, 77, 768))


def test_weights_bit_identical_after_fc_fbc_fc_cycles(a1111):
    from modules import sd_unet

    before = parameter_fingerprint(a1111.unet)
    for variant, channels in (("fc", 4), ("fbc", 8), ("fc", 4)):
        a1111.activate(variant)
        unet = sd_unet.current_unet
        assert a1111.unet.input_blocks[0][0].weight.shape[1] == 4 + channels, f"{variant}: first conv not widened"
        assert parameter_fingerprint(a1111.unet) != before, f"{variant}: IC-Light weights are not in place"
        with unet.concat_latents(torch.randn(2, channels, 8, 8)):
            out = unet_call(a1111)
        assert out.shape == (2, 4, 8, 8) and out.abs().mean() > 0
    a1111.deactivate()
    assert parameter_fingerprint(a1111.unet) == before, "checkpoint parameters differ after deactivation"
    assert a1111.unet.input_blocks[0][0].in_channels == 4


def test_weights_bit_identical_after_an_exception_mid_forward(a1111):
    from modules import sd_unet

    before = parameter_fingerprint(a1111.unet)
    a1111.activate("fbc")
    unet = sd_unet.current_unet

    def failing_block(module, args):
        raise RuntimeError("out of memory (simulated)")

    hook = a1111.unet.middle_block.register_forward_pre_hook(failing_block)
    try:
        with unet.concat_latents(torch.randn(2, 8, 8, 8)), pytest.raises(RuntimeError, match="simulated"):
            unet_call(a1111)
    finally:
        hook.remove()
    a1111.deactivate()
    assert parameter_fingerprint(a1111.unet) == before, "checkpoint parameters differ after a failed forward"


def test_plain_generation_after_iclight_equals_one_before(a1111):

    torch.manual_seed(0)
    with torch.no_grad():
        plain_before = unet_call(a1111)
    a1111.activate("fc")
    a1111.deactivate()
    torch.manual_seed(0)
    with torch.no_grad():
        plain_after = unet_call(a1111)
    assert torch.equal(plain_before, plain_after), "the checkpoint UNet computes differently after IC-Light"


LORA_MODULES = ("input_blocks.1.1.transformer_blocks.0.attn2.to_k", "output_blocks.3.0.in_layers.2")


def load_lora(networks, unet, layers=LORA_MODULES, name="style"):
    """A rank-2 Lora on `layers` (shaped for the checkpoint's weights), loaded for the generation as
    the Lora extension does; returns each layer's delta."""
    g = torch.Generator().manual_seed(7)
    net = networks.Network(name, {})
    deltas = {}
    for layer in layers:
        module = unet.get_submodule(layer)
        module.network_layer_name = layer.replace(".", "_")
        shape = module.weight.shape
        up = torch.randn(shape[0], 2, *[1] * (len(shape) - 2), generator=g) * 0.1
        down = torch.randn(2, *shape[1:], generator=g) * 0.1
        net.modules[module.network_layer_name] = networks.LoraModule(net, up, down)
        deltas[layer] = net.modules[module.network_layer_name].calc_updown(module.weight)[0]
    networks.loaded_networks.append(net)
    return deltas


def lora_on_checkpoint(networks, unet):
    """The checkpoint after a plain generation with the Lora: its weights changed in place."""
    originals = {n: unet.get_submodule(n).weight.detach().clone() for n in LORA_MODULES}
    deltas = load_lora(networks, unet)
    for name in LORA_MODULES:
        networks.network_apply_weights(unet.get_submodule(name))
    return originals, deltas


def test_merge_starts_from_lora_backup_not_the_lora_modified_weight(lora_networks):
    unet = ldm_unet(seed=3)
    originals, _ = lora_on_checkpoint(lora_networks, unet)
    offsets = offsets_from_tensors("fc", random_offsets(unet, 8, seed=4))
    before = parameter_fingerprint(unet)
    lora_state = {n: dict(vars(unet.get_submodule(n))) for n in LORA_MODULES}

    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), memory_source(offsets))
    iclight.activate()
    for name in LORA_MODULES:
        merged = unet.get_submodule(name).weight
        expected = originals[name] + offsets.tensors[name + ".weight"].float()
        assert torch.equal(merged, expected), f"{name}: merged from the Lora-modified weight, not the original"
    iclight.deactivate()

    assert parameter_fingerprint(unet) == before
    for name in LORA_MODULES:
        after = vars(unet.get_submodule(name))
        for attr in ("network_weights_backup", "network_bias_backup", "network_current_names"):
            assert after.get(attr, "absent") is lora_state[name].get(attr, "absent"), f"{name}.{attr} not restored"


def test_lora_applies_on_top_of_iclight_and_leaves_merged_weights_clean(lora_networks):
    unet = ldm_unet(seed=3)
    _, deltas = lora_on_checkpoint(lora_networks, unet)
    offsets = offsets_from_tensors("fc", random_offsets(unet, 8, seed=4))
    before = parameter_fingerprint(unet)

    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), memory_source(offsets))
    iclight.activate()
    merged = {n: unet.get_submodule(n).weight for n in LORA_MODULES}
    clean = {n: w.detach().clone() for n, w in merged.items()}
    for name in LORA_MODULES:
        lora_networks.network_apply_weights(unet.get_submodule(name))  # what Lora's patched forward does
        assert torch.equal(merged[name], clean[name] + deltas[name]), f"{name}: Lora not applied on top of IC-Light"
    iclight.deactivate()

    for name in LORA_MODULES:
        assert torch.equal(merged[name], clean[name]), f"{name}: Lora left baked into the IC-Light weights"
    assert parameter_fingerprint(unet) == before, "checkpoint (with its Lora) not restored exactly"


def test_lora_under_cached_fp16_weights_applies_on_top_of_iclight(lora_networks):
    """FP8 with "Cache FP16 weight for LoRA": Lora rebuilds each weight from the module's
    `fp16_weight`, which holds the checkpoint's weight, not IC-Light's."""
    unet = ldm_unet(seed=3)
    for name in LORA_MODULES:
        module = unet.get_submodule(name)
        module.fp16_weight = module.weight.data.clone().cpu().half()  # as sd_models.load_model_weights does
        if module.bias is not None:
            module.fp16_bias = module.bias.data.clone().cpu().half()
    fp16_copies = {n: (unet.get_submodule(n).fp16_weight, getattr(unet.get_submodule(n), "fp16_bias", None))
                   for n in LORA_MODULES}
    deltas = load_lora(lora_networks, unet)
    offsets = offsets_from_tensors("fc", random_offsets(unet, 8, seed=4))

    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), memory_source(offsets))
    iclight.activate()
    for name in LORA_MODULES:
        module = unet.get_submodule(name)
        clean = module.weight.detach().clone()
        lora_networks.network_apply_weights(module)
        assert torch.allclose(module.weight, clean + deltas[name], atol=1e-6), \
            f"{name}: Lora rebuilt the weight from the checkpoint's FP16 copy, dropping the IC-Light merge"
    iclight.deactivate()
    for name in LORA_MODULES:
        module = unet.get_submodule(name)
        restored = (module.fp16_weight, getattr(module, "fp16_bias", None))
        assert all(a is b for a, b in zip(restored, fp16_copies[name])), f"{name}: FP16 copies not restored"


@pytest.mark.parametrize("layers", [("input_blocks.0.0",), LORA_MODULES], ids=["first_conv", "other_layers"])
def test_lora_on_the_widened_first_conv_is_refused_by_name(a1111, lora_networks, layers):
    """Lora would fail to add its first-conv layer to the widened conv and only log it at debug level."""
    from modules import processing

    from generation_harness import subject, txt2img

    load_lora(lora_networks, a1111.unet, layers, name="locon_style")
    before = parameter_fingerprint(a1111.unet)
    p = txt2img([{"enabled": True, "foreground": subject()}], steps=2)
    if layers == LORA_MODULES:
        processing.process_images(p)  # a Lora elsewhere is no reason to refuse
    else:
        with pytest.raises(IcLightError, match=r"Lora 'locon_style' changes the UNet's first conv.*Remove <lora:locon_style"):
            processing.process_images(p)
    assert parameter_fingerprint(a1111.unet) == before


def sdxl_like_unet():
    """SDXL's layout where ldm can build it: no attention at the first level, text context 2048."""
    return ldm_unet(dict(
        image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[4, 2],
        num_res_blocks=2, channel_mult=[1, 2, 4], num_head_channels=8, use_spatial_transformer=True,
        transformer_depth=1, context_dim=2048, use_linear_in_transformer=True, legacy=False,
    ))


def sd2_like_unet():
    return ldm_unet(dict(
        image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[4, 2, 1],
        num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_head_channels=8, use_spatial_transformer=True,
        transformer_depth=1, context_dim=1024, use_linear_in_transformer=True, legacy=False,
    ))


def sd1_inpainting_unet():
    from tiny_models import TINY_UNET

    return ldm_unet({**TINY_UNET, "in_channels": 9})


@pytest.mark.parametrize("make_unet,what", [
    (sdxl_like_unet, "an SDXL checkpoint"),
    (sd2_like_unet, "an SD 2.x checkpoint"),
    (sd1_inpainting_unet, "an SD 1.x inpainting checkpoint"),
])
def test_non_sd1_checkpoint_is_refused_before_anything_changes(a1111, make_unet, what):
    from modules import sd_unet

    a1111.sd_model.model.diffusion_model = make_unet()
    before = parameter_fingerprint(a1111.sd_model.model.diffusion_model)
    expected = f"IC-Light works with SD 1.x checkpoints only (this one is {what})"
    with pytest.raises(IcLightError, match=expected.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        a1111.activate("fc")
    assert parameter_fingerprint(a1111.sd_model.model.diffusion_model) == before
    assert sd_unet.current_unet is None, "a refused IC-Light UNet was left current"


def test_offsets_that_do_not_fit_are_refused_before_anything_changes(a1111, tmp_path):

    from tiny_models import write_offsets

    tensors = random_offsets(a1111.unet, 8, seed=9)
    tensors["out.2.weight"] = torch.zeros(4, 32, 1, 1, dtype=torch.float16)
    write_offsets(a1111.model_dir / "iclight_sd15_fc.safetensors", tensors, "diffusers")
    before = parameter_fingerprint(a1111.unet)
    with pytest.raises(ModelFileFault, match=r"does not fit.*wrong shapes: out\.2\.weight"):
        a1111.activate("fc")
    assert parameter_fingerprint(a1111.unet) == before
