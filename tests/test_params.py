"""API arguments (positional and named), infotext round trip, from the one parameter schema."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from iclight_a1111.errors import IcLightError
from iclight_a1111.generation.infotext import infotext_entries
from iclight_a1111.generation.params import PARAMS, defaults
from iclight_a1111.generation.values import values_from_args
from iclight_a1111.images.placed_lights import parse_lights


def png_base64(array, data_url=False):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    text = base64.b64encode(buffer.getvalue()).decode()
    return "data:image/png;base64," + text if data_url else text


def test_positional_args_follow_schema_order():
    image = np.zeros((4, 6, 3), np.uint8)
    args = [True, "iclight_sd15_fbc.safetensors", "Top", image, None, "Upload, flipped", image, False, True]
    values = values_from_args(args)
    assert [p.key for p in PARAMS if values[p.key] is None] == ["light_map"]
    assert (values["model"], values["light"], values["background_source"], values["extra_outputs"]) == (
        "iclight_sd15_fbc.safetensors", "Top", "Upload, flipped", True)


def test_named_dict_fills_the_rest_with_defaults_and_matches_case_insensitively():
    values = values_from_args([{"enabled": "true", "light": "bottom"}])
    assert values == {**defaults(), "enabled": True, "light": "Bottom"}


@pytest.mark.parametrize("data_url", [False, True])
def test_base64_images_decode_with_or_without_data_prefix(data_url):
    rgba = np.random.default_rng(0).integers(0, 255, (5, 7, 4), dtype=np.uint8)
    values = values_from_args([{"foreground": png_base64(rgba, data_url)}])
    assert np.array_equal(values["foreground"], rgba)


def test_unknown_named_keys_are_named_in_the_error():
    with pytest.raises(IcLightError, match="Unknown IC-Light argument\\(s\\): direction, strength\\. Known: enabled, model"):
        values_from_args([{"enabled": True, "direction": "Left", "strength": 2}])


@pytest.mark.parametrize("args,message", [
    ([{"enabled": "yes"}], "'enabled' must be true or false, got 'yes'"),
    ([{"light": 3}], "'light' must be one of"),
    ([{"model": 5}], "'model' must be a string, got int"),
    ([{"foreground": 12}], r"'foreground' must be an image \(PNG, JPEG or WebP as base64\), got int"),
    ([{"foreground": np.zeros((3, 3, 2), np.uint8)}], r"'foreground' has shape \(3, 3, 2\)"),
    ([{"background": "%%%"}], "'background': the string is not valid base64"),
    ([{"light_color": "orange"}], "'light_color' must be a colour like #ffaa00, got 'orange'"),
    ([{"falloff": 9}], r"'falloff' must be within 0\.2\.\.5\.0, got 9"),
    ([True] * (len(PARAMS) + 1), f"takes {len(PARAMS)} arguments"),
])
def test_bad_types_are_refused_naming_the_parameter(args, message):
    with pytest.raises(IcLightError, match=message):
        values_from_args(args)


def test_named_dict_without_enabled_means_enabled():
    assert values_from_args([{"light": "Top"}])["enabled"] is True
    assert values_from_args([{"light": "Top", "enabled": False}])["enabled"] is False


def infotext_keys(values, variant, is_img2img):
    return {k.removeprefix("IC-Light ") for k in infotext_entries({**defaults(), **values}, variant, is_img2img)}


def test_infotext_records_what_defines_the_result_and_what_differs_from_its_default():
    assert infotext_keys({"light": "Left"}, "fc", True) == {"model", "light"}, "defaults were written"
    assert infotext_keys({}, "fc", False) == {"model"}
    assert infotext_keys({}, "fbc", False) == {"model"}
    assert infotext_keys({"background_source": "Top"}, "fbc", False) == {"model", "background"}
    assert infotext_keys({"remove_background": True, "falloff": 2.0}, "fc", True) == {
        "model", "light", "remove background", "falloff"}
    assert infotext_keys({"falloff": 2.0, "light": "None"}, "fc", True) == {"model", "light"}, \
        "a parameter the generation did not use was written"
    assert infotext_keys({"restore_detail": True, "detail_size": 7}, "fbc", True) == {
        "model", "restore detail", "detail blur size"}
    assert infotext_keys({"normal_map": True, "light_color": "#ff0000"}, "fc", True) == {
        "model", "normal map", "light color"}
    assert infotext_keys({"light": "Placed", "lights": parse_lights("0.5,0.5,0.5,#ffffff,1"), "light_color": "#ff0000"}, "fc", True) \
        == {"model", "light", "lights"}, "placed lights have their own colours: the light colour is not used"
    assert infotext_keys({"output": "Original background"}, "fc", False) == {"model", "output"}
    assert infotext_keys({"output": "Original background", "light_background": 0.5}, "fc", False) == {
        "model", "output", "light the background"}
    assert infotext_keys({"light_background": 0.5}, "fc", False) == {"model"}, "light the background written for Generated"
    assert infotext_keys({"preserve_color": 0.5, "keep_raw": True}, "fc", False) == {"model", "preserve color", "keep the raw relight"}
    assert infotext_keys({"keep_raw": True}, "fc", False) == {"model"}, "keep the raw relight written with nothing to keep"


def test_pasting_an_iclight_infotext_sets_every_field_it_leaves_out_to_its_default():
    from iclight_a1111.generation.infotext import pasted_text
    from iclight_a1111.generation.params import PARAMS_BY_KEY

    params = {"IC-Light model": "iclight_sd15_fc.safetensors", "IC-Light light": "Top"}
    pasted = {key: pasted_text(PARAMS_BY_KEY[key], params) for key in ("remove_background", "falloff", "lights", "light")}
    assert pasted == {"remove_background": "False", "falloff": "1.0", "lights": "", "light": "Top"}
    assert pasted_text(PARAMS_BY_KEY["light"], {"Steps": "20"}) is None, "an infotext without IC-Light changed the IC-Light fields"


def test_visibility_rules_follow_the_schema():
    from iclight_a1111.generation.params import shown_keys

    def shown(variant, is_img2img, **values):
        return shown_keys({**defaults(), **values}, variant, is_img2img)

    light_controls = {"light", "light_color", "shadow_color", "falloff"}
    fc_img2img = shown("fc", True)
    assert light_controls <= fc_img2img and "lights" not in fc_img2img and "light_map" not in fc_img2img
    assert not {"background_source", "background", "foreground", "detail_size", "detail_source", "normal_sigma"} & fc_img2img
    assert not light_controls & shown("fc", False), "light controls shown in txt2img, where no light map is used"
    assert not light_controls & shown("fbc", True), "light controls shown with an fbc model"
    assert {"background_source", "background", "foreground"} <= shown("fbc", False)
    assert "background" not in shown("fbc", False, background_source="Left"), "the upload shown for a gradient"
    assert not {"background_source", "background"} & shown("fc", False), "fbc background controls shown with fc"
    assert "light_map" in shown("fc", True, light="Custom") and "light_map" not in shown("fc", True, light="Top")
    assert "lights" in shown("fc", True, light="Placed")
    assert {"detail_size", "detail_source"} <= shown("fc", True, restore_detail=True)
    assert "normal_sigma" in shown("fc", True, normal_map=True)
    assert "light_background" in shown("fc", True, output="Original background")
    assert not {"light_background", "keep_raw"} & shown("fc", True), "output options shown for Generated"
    assert "hires_pass" in shown("fc", False) and "hires_pass" not in shown("fc", True)
    assert {"model", "remove_background", "extra_outputs", "restore_detail"} <= shown("fbc", False) & fc_img2img


def test_infotext_has_the_model_hash_and_never_images():
    values = {**defaults(), "enabled": True, "foreground": np.zeros((2, 2, 3), np.uint8)}
    entries = infotext_entries(values, "fc", True, model_hash="0123456789")
    assert entries["IC-Light model hash"] == "0123456789"
    assert not any(p.kind == "image" and p.infotext_key in entries for p in PARAMS), "images leaked into infotext"
    assert "IC-Light model hash" not in infotext_entries(values, "fc", True, model_hash=None)


def test_numeric_parameters_are_checked_and_become_xyz_axes(monkeypatch):
    from types import SimpleNamespace

    from iclight_a1111.generation import params
    from iclight_a1111.generation.params import Param
    from iclight_a1111.generation.values import coerce
    from iclight_a1111.webui import xyz_axes

    radius = Param("detail_radius", "Detail radius", "number", 5, minimum=1, maximum=31, step=2)
    assert coerce(radius, "7") == 7 and coerce(radius, 9.0) == 9
    for bad, message in (("wide", "must be a number"), (True, "must be a number"), (40, r"within 1\.\.31")):
        with pytest.raises(IcLightError, match=message):
            coerce(radius, bad)

    monkeypatch.setattr(xyz_axes, "PARAMS", (*params.PARAMS, radius))
    axis = {a.label: a for a in xyz_axes.axis_specs(lambda: [])}["IC-Light detail radius"]
    assert axis.type is int and axis.choices is None
    p = SimpleNamespace()
    axis.apply(p, 11, None)
    assert p.iclight_overrides == {"detail_radius": 11}
