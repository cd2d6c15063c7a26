"""A merged copy is released before A1111 loads another checkpoint's weights (the dropdown, the options
API, `override_settings` and the X/Y/Z checkpoint axis), not once they are loaded; a reload of the
checkpoint in use keeps it."""
import pytest

from generation_harness import txt2img
from iclight_a1111.webui import checkpoint_switch, merged_weights


@pytest.fixture
def releases_first(monkeypatch):
    """`checkpoint_switch.install()` as scripts/iclight_settings.py runs it, undone after the test."""
    from modules import sd_models

    monkeypatch.setattr(sd_models, "reload_model_weights", sd_models.reload_model_weights)
    checkpoint_switch.install()


@pytest.fixture
def held_at_load(monkeypatch):
    """At each `load_model_weights`: how many merged copies IC-Light held."""
    from modules import sd_models

    seen = []
    load_model_weights = sd_models.load_model_weights

    def recording(model, checkpoint_info, state_dict):
        seen.append(len(merged_weights.MERGED_WEIGHTS))
        return load_model_weights(model, checkpoint_info, state_dict)

    monkeypatch.setattr(sd_models, "load_model_weights", recording)
    return seen


def dropdown(info):
    """The checkpoint dropdown and POST /sdapi/v1/options: the setting, then its onchange
    (modules/initialize_util.py ~181: `sd_models.reload_model_weights()`)."""
    from modules import sd_models, shared

    shared.opts.sd_model_checkpoint = info.title
    sd_models.reload_model_weights()


def override(info):
    """`override_settings` (API) and the X/Y/Z checkpoint axis (scripts/xyz_grid.py `apply_checkpoint`)."""
    from modules import processing

    processing.run_generation(txt2img([{"enabled": False}], steps=2, override_settings={"sd_model_checkpoint": info.title}))


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
@pytest.mark.parametrize("switch", [dropdown, override])
def test_the_merged_copy_is_gone_before_the_next_checkpoint_loads(a1111, releases_first, held_at_load, switch, family):
    a1111.activate("fc")
    a1111.deactivate()
    assert len(merged_weights.MERGED_WEIGHTS) == 1
    switch(a1111.add_checkpoint("other", seed=5, config=family))
    assert held_at_load and not any(held_at_load), \
        f"merged copies held while A1111 loaded the next checkpoint's weights: {held_at_load}"


def test_reloading_the_checkpoint_in_use_keeps_the_merged_copy(a1111, releases_first):
    from modules import sd_models

    a1111.activate("fc")
    a1111.deactivate()
    sd_models.reload_model_weights()
    sd_models.reload_model_weights(info=a1111.sd_model.sd_checkpoint_info)
    assert merged_weights.MERGED_WEIGHTS.held_for(a1111.unet), "the merged copy was released though nothing loads"


def test_installing_twice_wraps_once(releases_first):
    from modules import sd_models

    wrapped = sd_models.reload_model_weights
    checkpoint_switch.install()
    assert sd_models.reload_model_weights is wrapped
