"""IC-Light is activated once per generation, whatever the batch count, and is off at its end: after
the last batch, an exception, an interrupt, an error between sampling and postprocess; and nothing of
it outlives a switch to another loaded checkpoint."""
import pytest
import torch

from generation_harness import subject, txt2img
from tiny_models import parameter_fingerprint


@pytest.fixture
def swaps(monkeypatch):
    """The number of times IC-Light weights were swapped into a UNet (one per activation)."""
    from iclight_a1111.unet import concat_unet

    calls = []
    patch_unet = concat_unet.patch_unet

    def counted(unet, *args, **kwargs):
        calls.append(unet)
        return patch_unet(unet, *args, **kwargs)

    monkeypatch.setattr(concat_unet, "patch_unet", counted)
    return calls


@pytest.fixture
def reloads(monkeypatch):
    """The calls of `sd_models.reload_model_weights`, which A1111 makes before every batch."""
    from modules import sd_models

    calls = []
    reload_model_weights = sd_models.reload_model_weights

    def counted(*args, **kwargs):
        calls.append(kwargs.get("info"))
        return reload_model_weights(*args, **kwargs)

    monkeypatch.setattr(sd_models, "reload_model_weights", counted)
    return calls


def on_unet_call(unet, action):
    """Run `action(call_number)` before each call of the UNet's first block; returns the hook handle."""
    calls = []

    def hook(module, args):
        calls.append(1)
        action(len(calls))

    return unet.input_blocks[0].register_forward_pre_hook(hook)


STEPS = 2
UNET_CALLS_PER_BATCH = STEPS  # Euler: one denoiser call per step, cond and uncond in one UNet call


def test_batch_count_four_activates_iclight_once_and_restores_the_checkpoint(a1111, swaps, reloads):
    from modules import processing, sd_unet

    before = parameter_fingerprint(a1111.unet)
    processed = processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], n_iter=4, steps=STEPS))
    assert len(processed.images) == 4
    assert len(reloads) == 1 + 4, "the stand-in does not reload the checkpoint before the generation and every batch"
    assert len(swaps) == 1, f"IC-Light was activated {len(swaps)} times in one generation of 4 batches"
    assert sd_unet.current_unet is None, "IC-Light is still active after the generation"
    assert parameter_fingerprint(a1111.unet) == before, "checkpoint weights differ after the generation"


def test_exception_in_the_third_batch_switches_iclight_off_and_restores_the_checkpoint(a1111, swaps):
    from modules import processing, sd_unet

    def fail_in_third_batch(call):
        if call == 2 * UNET_CALLS_PER_BATCH + 1:
            raise RuntimeError("CUDA out of memory (simulated)")

    before = parameter_fingerprint(a1111.unet)
    hook = on_unet_call(a1111.unet, fail_in_third_batch)
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], n_iter=4, steps=STEPS))
    finally:
        hook.remove()
    assert len(swaps) == 1
    assert sd_unet.current_unet is None, "IC-Light is still active after an exception in sampling"
    assert parameter_fingerprint(a1111.unet) == before


def test_interrupt_in_the_second_batch_ends_the_generation_with_iclight_off(a1111, swaps):
    from modules import processing, sd_unet, shared

    def interrupt_in_second_batch(call):
        if call == UNET_CALLS_PER_BATCH + 1:
            shared.state.interrupted = True

    before = parameter_fingerprint(a1111.unet)
    hook = on_unet_call(a1111.unet, interrupt_in_second_batch)
    try:
        processed = processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], n_iter=4, steps=STEPS))
    finally:
        hook.remove()
    assert len(processed.images) == 2, "the interrupt did not stop the generation after the second batch"
    assert len(swaps) == 1
    assert sd_unet.current_unet is None, "IC-Light is still active after an interrupted generation"
    assert parameter_fingerprint(a1111.unet) == before


def test_error_between_sampling_and_postprocess_is_cleaned_up_when_p_is_closed(a1111, swaps):
    """A NaN check or a decoding error raises after `p.sample` returned: `postprocess` never runs, but
    A1111 closes `p` (modules/txt2img.py `closing(p)`)."""
    from modules import processing, sd_unet

    decode = a1111.sd_model.decode_first_stage
    calls = []

    def decode_failing_in_second_batch(samples):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("A tensor with NaNs was produced in VAE (simulated)")
        return decode(samples)

    before = parameter_fingerprint(a1111.unet)
    a1111.sd_model.decode_first_stage = decode_failing_in_second_batch
    try:
        with pytest.raises(RuntimeError, match="NaNs"):
            processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], n_iter=3, steps=STEPS))
    finally:
        del a1111.sd_model.decode_first_stage
    assert sd_unet.current_unet is None, "IC-Light is still active after an error outside sampling"
    assert parameter_fingerprint(a1111.unet) == before


def test_switch_to_an_already_loaded_checkpoint_releases_the_cache_and_never_routes_to_the_old_model(a1111, swaps):
    """sd_checkpoints_limit 2: switching back to a loaded checkpoint takes the reuse path of
    `reload_model_weights`, without `model_loaded` callbacks and without `apply_unet("None")`."""
    from modules import processing, sd_models, shared

    from iclight_a1111.webui import merged_weights

    shared.opts.sd_checkpoints_limit = 2
    first, first_unet = sd_models.model_data.sd_model, a1111.unet
    other_info = a1111.add_checkpoint("other-sd15", seed=5)
    sd_models.reload_model_weights(info=other_info)
    other_unet = shared.sd_model.model.diffusion_model
    assert other_unet is not first_unet and first in sd_models.model_data.loaded_sd_models

    processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], steps=STEPS))
    assert merged_weights.MERGED_WEIGHTS.held_for(other_unet)
    other_before, first_before = parameter_fingerprint(other_unet), parameter_fingerprint(first_unet)

    shared.opts.sd_model_checkpoint = first.sd_checkpoint_info.title
    sd_models.reload_model_weights()
    assert shared.sd_model is first, "the stand-in did not reuse the loaded checkpoint"
    assert merged_weights.MERGED_WEIGHTS.held_for(other_unet), "the reuse path is expected to tell no one"

    processing.run_generation(txt2img([{"enabled": False}], steps=STEPS))
    assert merged_weights.MERGED_WEIGHTS.weights is None, "merged weights of a checkpoint not in use are still held"

    other_calls = []
    hook = other_unet.register_forward_pre_hook(lambda module, args: other_calls.append(1))
    try:
        processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], steps=STEPS))
    finally:
        hook.remove()
    assert not other_calls, "the generation ran the UNet of the checkpoint switched away from"
    assert swaps[-1] is first_unet, "IC-Light was merged into another UNet than the one in use"
    assert merged_weights.MERGED_WEIGHTS.held_for(first_unet)
    assert parameter_fingerprint(other_unet) == other_before
    assert parameter_fingerprint(first_unet) == first_before


def test_model_switched_mid_generation_turns_iclight_off_its_model(a1111):
    """A switch to a loaded checkpoint while IC-Light is active (no `apply_unet("None")`): the next UNet
    call runs the model in use, plainly, and IC-Light lets go of the old model and its merged weights."""
    from modules import sd_models, sd_unet, shared

    from iclight_a1111.webui import merged_weights

    shared.opts.sd_checkpoints_limit = 2
    first_unet = a1111.unet
    before = parameter_fingerprint(first_unet)
    other_info = a1111.add_checkpoint("other-sd15", seed=5)
    sd_models.reload_model_weights(info=other_info)
    other_unet = shared.sd_model.model.diffusion_model
    sd_models.reload_model_weights(info=sd_models.checkpoints_list[a1111.sd_model.sd_checkpoint_info.title])
    a1111.activate("fc")
    assert merged_weights.MERGED_WEIGHTS.held_for(first_unet)

    sd_models.reload_model_weights(info=other_info)
    assert sd_unet.current_unet is not None, "the reuse path is expected to leave the SdUnet as it is"
    x, t, context = torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, 768)
    with torch.no_grad():
        out = other_unet(x, t, context)
        assert sd_unet.current_unet is None, "IC-Light stayed the current SdUnet after the switch"
        plain = other_unet(x, t, context)
    assert torch.equal(out, plain), "the model in use did not run plainly"
    assert merged_weights.MERGED_WEIGHTS.weights is None, "merged weights of the old model are still held"
    assert parameter_fingerprint(first_unet) == before, "the old model was left with IC-Light weights"
