"""API arguments (positional and named), infotext round trip, from the one parameter schema."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from iclight_a1111.errors import IcLightError
from iclight_a1111.params import PARAMS, defaults, infotext_entries, values_from_args


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
    ([{"foreground": 12}], "'foreground' must be an image, got int"),
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


def test_infotext_records_only_the_parameters_the_generation_used():
    common = {"model", "remove background", "extra outputs", "restore detail", "output", "preserve color"}
    assert infotext_keys({"light": "Left"}, "fc", True) == common | {
        "light", "light color", "shadow color", "falloff", "reinforce foreground", "normal map"}
    assert infotext_keys({"light": "None"}, "fc", True) == common | {"light", "normal map"}
    assert infotext_keys({"light": "Custom"}, "fc", True) == common | {"light", "reinforce foreground", "normal map"}
    assert infotext_keys({}, "fc", False) == common
    assert infotext_keys({"output": "Original background"}, "fc", False) == common | {
        "light the background", "keep the raw relight"}
    assert infotext_keys({"preserve_color": 0.5}, "fc", False) == common | {"keep the raw relight"}
    assert infotext_keys({}, "fbc", False) == common | {"background"}
    assert infotext_keys({"restore_detail": True}, "fbc", True) == common | {
        "background", "detail blur size", "detail source", "keep the raw relight"}
    assert infotext_keys({"normal_map": True}, "fc", True) == common | {
        "light color", "shadow color", "falloff", "reinforce foreground", "normal map", "normal sigma"}


def test_infotext_has_the_model_hash_and_never_images():
    values = {**defaults(), "enabled": True, "foreground": np.zeros((2, 2, 3), np.uint8)}
    entries = infotext_entries(values, "fc", True, model_hash="0123456789")
    assert entries["IC-Light model hash"] == "0123456789"
    assert not any(p.kind == "image" and p.infotext_key in entries for p in PARAMS), "images leaked into infotext"
    assert "IC-Light model hash" not in infotext_entries(values, "fc", True, model_hash=None)


def test_numeric_parameters_are_checked_and_become_xyz_axes(monkeypatch):
    from types import SimpleNamespace

    from iclight_a1111 import params, xyz_axes
    from iclight_a1111.params import Param, coerce

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
