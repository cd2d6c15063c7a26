"""Hires. fix on another checkpoint and the refiner: the first pass (or the steps before the switch)
with IC-Light, IC-Light off with the first checkpoint's own weights back before A1111 loads the other
one, the rest plain (or, asked for, with IC-Light merged onto another SD 1.x checkpoint)."""
import pytest

from generation_harness import settings_module, subject, txt2img
from tiny_models import parameter_fingerprint


class UnetCalls:
    """Records each UNet run of the models it watches: which model, and whether it ran with IC-Light
    (its first conv got the concat latents appended)."""

    def __init__(self):
        self.calls = []

    def watch_unet(self, name, unet):
        conv = unet.input_blocks[0][0]
        conv.register_forward_hook(lambda module, args, out: self.calls.append((name, args[0].shape[1] > 4)))

    def watch(self, name):
        return lambda model: self.watch_unet(name, model.model.diffusion_model)


@pytest.fixture
def switches(monkeypatch):
    """At each checkpoint switch A1111 makes (`reload_model_weights` with `info`): the state of the model
    being left, as the loading finds it."""
    from modules import sd_models, sd_unet, shared

    from iclight_a1111.webui import merged_weights

    seen = []
    reload_model_weights = sd_models.reload_model_weights

    def recording(*args, info=None, **kwargs):
        if info is not None and info.filename != shared.sd_model.sd_checkpoint_info.filename:
            unet = shared.sd_model.model.diffusion_model
            seen.append({"to": info.model_name, "unet": unet, "fingerprint": parameter_fingerprint(unet),
                         "sd_unet": sd_unet.current_unet, "cache": merged_weights.MERGED_WEIGHTS.weights})
        return reload_model_weights(*args, info=info, **kwargs)

    monkeypatch.setattr(sd_models, "reload_model_weights", recording)
    return seen


def hires(a1111, hr_checkpoint_name, n_iter=1, **values):
    p = txt2img([{"enabled": True, "foreground": subject(), **values}], steps=2, n_iter=n_iter, enable_hr=True,
                hr_scale=2.0, hr_upscaler="Lanczos", hr_checkpoint_name=hr_checkpoint_name)
    p.first_model_calls = UnetCalls()
    p.first_model_calls.watch_unet("first", a1111.unet)
    return p


@pytest.mark.parametrize("limit", [1, 2])
def test_sdxl_hires_checkpoint_relights_the_first_pass_then_refines_plainly(a1111, switches, limit):
    from modules import processing, sd_unet, shared
    from modules.infotext_utils import paste_values

    from iclight_a1111.webui import merged_weights
    from test_script_integration import panels

    shared.opts.sd_checkpoints_limit = limit
    calls = UnetCalls()
    a1111.add_checkpoint("sdxl-finish", seed=9, config="sdxl", on_load=calls.watch("sdxl"))
    before = parameter_fingerprint(a1111.unet)
    p = hires(a1111, "sdxl-finish")
    processed = processing.run_generation(p)

    assert p.first_model_calls.calls and all(active for _, active in p.first_model_calls.calls), \
        "the first pass did not run with IC-Light"
    (switch,) = switches
    assert switch["to"] == "sdxl-finish" and switch["unet"] is a1111.unet
    assert switch["sd_unet"] is None, "IC-Light was still active when A1111 loaded the hires checkpoint"
    assert switch["fingerprint"] == before, "the first checkpoint did not have its own weights back at the switch"
    assert switch["cache"] is None, "merged weights were kept against a checkpoint A1111 is about to unload"
    assert calls.calls and not any(active for _, active in calls.calls), "the hires pass did not run plainly"
    assert shared.sd_model.is_sdxl and processed.images[0].size == (128, 128)
    assert sd_unet.current_unet is None and merged_weights.MERGED_WEIGHTS.weights is None
    assert p.extra_generation_params["Hires checkpoint"] == "sdxl-finish"
    assert p.extra_generation_params["IC-Light hires pass"] == "Off"
    script, _ = panels()["txt2img"]
    pasted = paste_values(script.infotext_fields, dict(p.extra_generation_params))
    assert dict(zip([key for _, key in script.infotext_fields], pasted))["IC-Light hires pass"] == "Off", \
        "pasting the infotext does not restore the hires pass setting"


def test_batch_count_two_relights_each_first_pass_on_the_checkpoint_loaded_back(a1111, switches):
    from modules import processing, sd_unet

    calls = UnetCalls()
    a1111.add_checkpoint("sdxl-finish", seed=9, config="sdxl", on_load=calls.watch("sdxl"))
    first_calls = UnetCalls()
    first_info = a1111.sd_model.sd_checkpoint_info
    object.__setattr__(first_info, "content", wrap_content(first_info.content, first_calls.watch("first")))
    processing.run_generation(hires(a1111, "sdxl-finish", n_iter=2))

    assert [s["to"] for s in switches] == ["sdxl-finish", "sdxl-finish"]
    assert all(s["sd_unet"] is None and s["cache"] is None for s in switches)
    assert first_calls.calls and all(active for _, active in first_calls.calls), \
        "the second batch's first pass, on the checkpoint A1111 loaded back, ran without IC-Light"
    assert not any(active for _, active in calls.calls)
    assert sd_unet.current_unet is None


def wrap_content(content, on_load):
    def loaded():
        model = content()
        on_load(model)
        return model
    return loaded


def weights(unet):
    """Each parameter's dtype, shape, device and bytes (not its object identity)."""
    return {name: entry[1:] for name, entry in parameter_fingerprint(unet).items()}


def test_sd1_hires_checkpoint_with_iclight_on_merges_onto_it(a1111, switches):
    from modules import processing, sd_unet, shared

    info = a1111.add_checkpoint("other-sd15", seed=5)
    before = parameter_fingerprint(a1111.unet)
    p = hires(a1111, "other-sd15", hires_pass="On")
    processing.run_generation(p)

    (switch,) = switches
    assert switch["sd_unet"] is None and switch["fingerprint"] == before
    # sd_checkpoints_limit 1, same architecture: A1111 loads the hires weights into the same model object,
    # so the watched UNet ran both passes.
    assert shared.sd_model.sd_checkpoint_info == info and shared.sd_model.model.diffusion_model is a1111.unet
    assert len(p.first_model_calls.calls) == 2 * 2, "expected the first pass's and the hires pass's UNet calls"
    assert all(active for _, active in p.first_model_calls.calls), "the hires pass ran without IC-Light"
    assert sd_unet.current_unet is None
    assert weights(a1111.unet) == weights(info.content().model.diffusion_model), \
        "the hires checkpoint's weights differ after IC-Light was merged onto it"
    assert p.extra_generation_params["IC-Light hires pass"] == "On"


@pytest.fixture
def weight_loads(monkeypatch):
    """At each `load_model_weights` into a model: whether IC-Light was active on that model, the
    weights the model had just before, and whether IC-Light still held a merged copy."""
    from modules import sd_models, sd_unet

    from iclight_a1111.webui import merged_weights

    seen = []
    load_model_weights = sd_models.load_model_weights

    def recording(model, checkpoint_info, state_dict):
        unet = model.model.diffusion_model
        seen.append((getattr(sd_unet.current_unet, "checkpoint", None) is not None
                     and sd_unet.current_unet.checkpoint.module is unet, weights(unet),
                     merged_weights.MERGED_WEIGHTS.weights is not None))
        return load_model_weights(model, checkpoint_info, state_dict)

    monkeypatch.setattr(sd_models, "load_model_weights", recording)
    return seen


@pytest.mark.parametrize("limit", [1, 2])
def test_refiner_runs_plainly_after_iclight_ran_the_steps_before_the_switch(a1111, weight_loads, limit):
    from modules import processing, sd_models, sd_unet, shared

    from iclight_a1111.webui import merged_weights

    settings_module()  # A1111 releases the cache through its `model_loaded` callback when it reads a checkpoint
    shared.opts.sd_checkpoints_limit = limit
    shared.opts.refiner_switch_by_sample_steps = True
    calls = UnetCalls()
    a1111.add_checkpoint("refiner-sd15", seed=6, on_load=calls.watch("refiner"))
    first_info, first_unet = a1111.sd_model.sd_checkpoint_info, a1111.unet
    calls.watch_unet("first", first_unet)
    before = parameter_fingerprint(first_unet)
    weight_loads.clear()
    try:
        processing.run_generation(txt2img([{"enabled": True, "foreground": subject()}], steps=4,
                                          refiner_checkpoint="refiner-sd15", refiner_switch_at=0.5))
    finally:
        shared.opts.refiner_switch_by_sample_steps = False

    assert [active for _, active in calls.calls] == [True, True, False, False], \
        f"expected 2 steps with IC-Light, then 2 plain refiner steps; got {calls.calls}"
    assert shared.sd_model.sd_checkpoint_info.model_name == "refiner-sd15"
    assert not any(active for active, _, _ in weight_loads), "A1111 loaded weights into a model IC-Light was active on"
    if limit == 1:  # with room for two models the first stays loaded, and its merged copy may stay with it
        assert not any(cached for _, _, cached in weight_loads), \
            "IC-Light's merged copy was still held while A1111 loaded the refiner's weights in its place"
    assert sd_unet.current_unet is None and merged_weights.MERGED_WEIGHTS.weights is None
    sd_models.reload_model_weights(info=first_info)
    if limit > 1:
        assert shared.sd_model.model.diffusion_model is first_unet
        assert parameter_fingerprint(first_unet) == before, "the first checkpoint differs after the refiner"
    else:
        # The refiner's weights went into the same model object; loading the first checkpoint back gives its weights.
        assert weight_loads[0][1] == {k: v[1:] for k, v in before.items()}, \
            "the first checkpoint did not have its own weights back when A1111 loaded the refiner"


def test_hires_pass_off_on_the_same_checkpoint_refines_plainly_and_keeps_the_cache(a1111):
    from modules import processing, sd_unet

    from iclight_a1111.webui import merged_weights

    before = parameter_fingerprint(a1111.unet)
    p = hires(a1111, "Use same checkpoint", hires_pass="Off")
    processing.run_generation(p)
    assert [active for _, active in p.first_model_calls.calls] == [True, True, False, False], \
        f"expected the first pass with IC-Light and a plain hires pass; got {p.first_model_calls.calls}"
    assert sd_unet.current_unet is None and parameter_fingerprint(a1111.unet) == before
    assert merged_weights.MERGED_WEIGHTS.held_for(a1111.unet), "the cache was dropped though the checkpoint stays"
    assert p.extra_generation_params["IC-Light hires pass"] == "Off"
