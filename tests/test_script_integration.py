"""The A1111 side of the script: UI from the schema, infotext paste fields, X/Y/Z axes, downloads."""
from pathlib import Path
from types import ModuleType

import pytest
import torch

from generation_harness import pil, script_module, subject, txt2img, img2img
from iclight_a1111.errors import DownloadFailed
from iclight_a1111.generation.params import PARAMS
from tiny_models import random_offsets, write_offsets


def test_ui_returns_one_input_per_schema_parameter_in_order(a1111):
    import gradio as gr

    script = script_module().IcLightScript()
    for is_img2img in (False, True):
        with gr.Blocks():
            inputs = script.ui(is_img2img)
        assert len(inputs) == len(PARAMS)
        assert [type(i).__name__ for i in inputs] == [
            "InputAccordion", "Dropdown", "Dropdown", "Image", "Image", "Dropdown", "Image", "Checkbox", "Checkbox",
            "ColorPicker", "ColorPicker", "Slider", "Checkbox", "Slider", "Radio", "Checkbox", "Checkbox", "Slider", "Textbox",
            "Radio", "Radio", "Slider", "Slider", "Checkbox"]
        assert inputs[1].choices == ["iclight_sd15_fbc.safetensors [fbc]", "iclight_sd15_fc.safetensors [fc]"]
        assert inputs[1].value == "iclight_sd15_fc.safetensors [fc]", "the default model is not fc"


def test_default_model_prefers_fc_then_fcon_then_fbc(a1111):
    from iclight_a1111.unet.model_files import select_model

    from iclight_a1111.webui import model_folders

    write_offsets(a1111.model_dir / "iclight_sd15_fcon.safetensors", random_offsets(a1111.unet, 8, 5), "diffusers")
    assert select_model(model_folders.model_files(), "").name == "iclight_sd15_fc.safetensors"
    (a1111.model_dir / "iclight_sd15_fc.safetensors").unlink()
    assert select_model(model_folders.model_files(), "").name == "iclight_sd15_fcon.safetensors"
    (a1111.model_dir / "iclight_sd15_fcon.safetensors").unlink()
    assert select_model(model_folders.model_files(), "").name == "iclight_sd15_fbc.safetensors"


def panels():
    """The IC-Light panels of txt2img and img2img, built as A1111 builds them."""
    import gradio as gr

    built = {}
    for tab, is_img2img in (("txt2img", False), ("img2img", True)):
        script = script_module().IcLightScript()
        with gr.Blocks():
            inputs = script.ui(is_img2img)
        built[tab] = (script, inputs)
    return built


def test_send_to_img2img_carries_enabled_model_and_every_setting(a1111):
    from modules.infotext_utils import send_to_fields

    built = panels()
    (source, source_inputs), (target, target_inputs) = built["txt2img"], built["img2img"]
    inputs, outputs = send_to_fields(source.infotext_fields, target.infotext_fields, target.paste_field_names)
    copied = {PARAMS[source_inputs.index(i)].key for i in inputs}
    assert {"enabled", "model", "light", "background_source", "falloff"} <= copied
    assert [target_inputs.index(o) for o in outputs] == [source_inputs.index(i) for i in inputs]


def test_pasted_infotext_enables_iclight_and_restores_the_model_label(a1111):
    from modules import processing
    from modules.infotext_utils import paste_values

    script_module()
    p = img2img([{"enabled": True, "light": "Bottom", "falloff": 2.0}], [pil(subject())], steps=2, denoising_strength=0.9)
    params = dict(processing.process_images(p).extra_generation_params)
    script, inputs = panels()["img2img"]
    values = dict(zip([key for _, key in script.infotext_fields], paste_values(script.infotext_fields, params)))
    assert values["IC-Light enabled"] is True
    assert values["IC-Light model"] == "iclight_sd15_fc.safetensors [fc]"
    assert (values["IC-Light light"], values["IC-Light falloff"]) == ("Bottom", 2.0)
    assert values["IC-Light background"] == "Upload", "an fbc-only field left out of an fc infotext is not its default"
    plain = dict(zip([key for _, key in script.infotext_fields], paste_values(script.infotext_fields, {"Steps": "20"})))
    assert plain["IC-Light enabled"] is False


def test_pasting_an_infotext_without_a_field_sets_it_to_its_default(a1111):
    from modules.infotext_utils import paste_values

    script_module()
    script, _ = panels()["img2img"]
    params = {"IC-Light model": "iclight_sd15_fc.safetensors", "IC-Light light": "Top"}
    values = dict(zip([key for _, key in script.infotext_fields], paste_values(script.infotext_fields, params)))
    assert (values["IC-Light falloff"], values["IC-Light remove background"], values["IC-Light lights"]) == (1.0, False, ""), \
        "fields the infotext leaves out keep the panel's state instead of their defaults"


def api_script_args(script, inputs, params):
    """The script args of an API request with `infotext` and no `alwayson_scripts`: the defaults A1111
    reads from `ui()` (api.py 315-333), then what `apply_infotext` reads through the paste fields."""
    from modules.api.api import infotext_script_args
    from modules.infotext_utils import PasteField

    args = [component.value for component in inputs]
    mentioned = infotext_script_args(params, [PasteField(*field) for field in script.infotext_fields], inputs)
    for index, value in mentioned.items():
        args[index] = value
    return args, mentioned


def test_api_infotext_switches_iclight_on_and_fills_the_fields_it_leaves_out(a1111):
    from modules import processing

    script, inputs = panels()["img2img"]
    params = {"Steps": "2", "IC-Light model": "iclight_sd15_fc.safetensors", "IC-Light light": "Right",
              "IC-Light falloff": "2.0", "IC-Light model hash": "0123456789"}
    args, mentioned = api_script_args(script, inputs, params)
    assert {PARAMS[i].key for i in mentioned} == {p.key for p in PARAMS if p.kind != "image"}, \
        "a field the infotext leaves out is not set to its default"
    p = img2img(args, [pil(subject())], steps=2, denoising_strength=0.9)
    processing.process_images(p)
    written = p.extra_generation_params
    assert written.get("IC-Light light") == "Right", f"the API infotext did not switch IC-Light on: {written}"
    assert written.get("IC-Light falloff") == "2.0" and written.get("IC-Light model") == "iclight_sd15_fc.safetensors"


def test_api_infotext_without_iclight_leaves_it_off(a1111):
    script, inputs = panels()["img2img"]
    args, mentioned = api_script_args(script, inputs, {"Steps": "20", "IC-Light restore detail": "True"})
    assert mentioned == {0: False} and args[0] is False


class FakeXyzGrid(ModuleType):
    """Stands in for scripts/xyz_grid.py (v1.10.1): `AxisOption(label, type, apply, choices=...)`, `axis_options`."""

    def __init__(self):
        super().__init__("xyz_grid.py")
        self.axis_options = []

        class AxisOption:
            def __init__(self, label, type, apply, choices=None, **kwargs):
                self.label, self.type, self.apply, self.choices = label, type, apply, choices

        self.AxisOption = AxisOption

    @staticmethod
    def cell(p, *axis_values):
        """One grid cell as `XYZGrid.run`'s `cell` makes it (scripts/xyz_grid.py v1.10.1 ~707-727): a
        shallow `copy(p)` (so every cell shares `p`'s `extra_generation_params` dict), each axis'
        `apply(pc, value, values)`, then `process_images(pc)`."""
        from copy import copy

        from modules import processing

        pc = copy(p)
        for option, value in axis_values:
            option.apply(pc, value, [value])
        return processing.process_images(pc)


@pytest.fixture
def xyz_axes(a1111):
    from modules import scripts

    xyz = FakeXyzGrid()
    script_class = type("Script", (), {"__module__": "xyz_grid.py"})
    scripts.scripts_data.append(scripts.ScriptClassData(script_class, "xyz_grid.py", "", xyz))
    try:
        script_module().add_xyz_axes()
        yield {**{o.label: o for o in xyz.axis_options}, "cell": xyz.cell}
    finally:
        scripts.scripts_data.clear()


def test_xyz_axes_cover_model_light_enabled_and_background(xyz_axes):
    assert set(xyz_axes) - {"cell"} == {"IC-Light enabled", "IC-Light model", "IC-Light light", "IC-Light background",
                             "IC-Light falloff", "IC-Light restore detail", "IC-Light detail blur size",
                             "IC-Light detail source", "IC-Light reinforce foreground", "IC-Light normal map",
                             "IC-Light normal sigma", "IC-Light lights", "IC-Light hires pass",
                             "IC-Light output", "IC-Light light the background", "IC-Light preserve color"}
    assert xyz_axes["IC-Light detail blur size"].type is int
    assert xyz_axes["IC-Light falloff"].type is float
    assert xyz_axes["IC-Light model"].choices() == ["iclight_sd15_fbc.safetensors", "iclight_sd15_fc.safetensors"]


def test_xyz_axis_values_are_what_the_generation_uses(a1111, xyz_axes):
    from modules import processing

    p = img2img([{"enabled": False, "light": "Left"}], [pil(subject())], steps=2, denoising_strength=0.9)
    xyz_axes["IC-Light enabled"].apply(p, "True", None)
    xyz_axes["IC-Light light"].apply(p, "Bottom", None)
    xyz_axes["IC-Light model"].apply(p, "iclight_sd15_fc.safetensors", None)
    processing.process_images(p)
    assert p.extra_generation_params["IC-Light light"] == "Bottom"
    assert p.extra_generation_params["IC-Light model"] == "iclight_sd15_fc.safetensors"

    p = txt2img([{"enabled": True, "foreground": subject()}], steps=2)
    xyz_axes["IC-Light model"].apply(p, "iclight_sd15_fbc.safetensors", None)
    xyz_axes["IC-Light background"].apply(p, "Ambient", None)
    processing.process_images(p)
    assert (p.extra_generation_params["IC-Light model"], p.extra_generation_params["IC-Light background"]) == (
        "iclight_sd15_fbc.safetensors", "Ambient")

    p = txt2img([{"enabled": True, "foreground": subject()}], steps=2)
    xyz_axes["IC-Light enabled"].apply(p, "False", None)
    processing.process_images(p)
    assert "IC-Light model" not in p.extra_generation_params


def test_xyz_cells_sharing_one_p_write_exactly_their_own_iclight_keys(a1111, xyz_axes):
    cell = xyz_axes["cell"]
    p = img2img([{"enabled": True, "light": "Left", "background_source": "Ambient"}], [pil(subject())], steps=2,
                denoising_strength=0.9)
    p.extra_generation_params["Other extension"] = "kept"
    shared = p.extra_generation_params

    texts = [cell(p, (xyz_axes["IC-Light model"], model), (xyz_axes["IC-Light enabled"], enabled)).infotexts[0]
             for model, enabled in (("iclight_sd15_fc.safetensors", "True"), ("iclight_sd15_fc.safetensors", "False"),
                                    ("iclight_sd15_fbc.safetensors", "True"))]
    assert "IC-Light light: Left" in texts[0]
    assert "IC-Light" not in texts[1], f"a cell with IC-Light off kept the previous cell's keys: {texts[1]}"
    assert "IC-Light model: iclight_sd15_fbc.safetensors" in texts[2]
    assert "IC-Light light" not in texts[2], f"an fbc cell carries the fc cell's light: {texts[2]}"
    assert all("Other extension: kept" in t for t in texts), "another extension's key was dropped"
    assert not any(k.startswith("IC-Light") for k in shared), "the cells wrote into the dict of the plot's p"


def test_xyz_lights_axis_sweeps_a_placed_light(a1111, xyz_axes):
    import csv

    from iclight_a1111.images.placed_lights import parse_lights

    field = '"0.2,0.5,0.4,#ffffff,1", "0.8,0.5,0.4,#ffffff,1;0.5,0.1,0.2,#ff0000,2"'
    values = [v.strip() for v in next(csv.reader([field], skipinitialspace=True))]  # as xyz_grid splits its field
    p = img2img([{"light": "Placed"}], [pil(subject())], steps=2, denoising_strength=0.9)
    for value in values:
        processed = xyz_axes["cell"](p, (xyz_axes["IC-Light lights"], value))
        assert f"IC-Light lights: {value}" in processed.infotexts[0]
        assert xyz_axes["IC-Light lights"].type is str
        assert parse_lights(value)


def test_infotext_records_model_name_and_short_hash(a1111):
    import hashlib

    from modules import processing

    p = txt2img([{"enabled": True, "foreground": subject()}], steps=2)
    processing.process_images(p)
    digest = hashlib.sha256((a1111.model_dir / "iclight_sd15_fc.safetensors").read_bytes()).hexdigest()
    assert p.extra_generation_params["IC-Light model hash"] == digest[:10]


def test_offline_download_names_file_url_and_folder(a1111):
    from iclight_a1111.webui import model_folders

    (a1111.model_dir / "iclight_sd15_fbc.safetensors").unlink()
    with pytest.raises(DownloadFailed) as refused:
        model_folders.download_official("iclight_sd15_fbc.safetensors")
    message = str(refused.value)
    assert "Temporary failure in name resolution" in message
    assert "https://huggingface.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fbc.safetensors" in message
    assert str(a1111.model_dir) in message


@pytest.fixture
def serve_download(monkeypatch):
    """Make A1111's downloader write `tensors` (a tiny IC-Light file) instead of fetching."""
    from modules import modelloader

    served = {}

    def download(url, dst, progress=True, hash_prefix=None):
        write_offsets(Path(dst), served["tensors"], "diffusers")

    monkeypatch.setattr(modelloader, "download_url_to_file", download)
    return served


def test_downloaded_file_is_verified_and_listed(a1111, serve_download):
    from iclight_a1111.webui import model_folders

    (a1111.model_dir / "iclight_sd15_fbc.safetensors").unlink()
    serve_download["tensors"] = random_offsets(a1111.unet, 12, seed=1)
    model = model_folders.download_official("iclight_sd15_fbc.safetensors")
    assert model.variant == "fbc" and model.path.is_file()
    assert "iclight_sd15_fbc.safetensors" in [m.name for m in model_folders.model_files()]


def test_downloaded_file_of_the_wrong_kind_is_deleted(a1111, serve_download):
    from iclight_a1111.webui import model_folders

    (a1111.model_dir / "iclight_sd15_fbc.safetensors").unlink()
    serve_download["tensors"] = random_offsets(a1111.unet, 8, seed=1)
    with pytest.raises(DownloadFailed, match="failed verification and was deleted: .*fc model, fbc was expected"):
        model_folders.download_official("iclight_sd15_fbc.safetensors")
    assert not (a1111.model_dir / "iclight_sd15_fbc.safetensors").exists()


def test_first_use_downloads_the_default_model_when_none_is_present(a1111, serve_download):
    from modules import processing

    for f in a1111.model_dir.iterdir():
        f.unlink()
    serve_download["tensors"] = random_offsets(a1111.unet, 8, seed=1)
    p = txt2img([{"enabled": True, "foreground": subject()}], steps=2)
    processing.process_images(p)
    assert p.extra_generation_params["IC-Light model"] == "iclight_sd15_fc.safetensors"


def test_non_sd1_model_files_are_not_offered_and_the_reason_is_logged(a1111, capsys):
    from iclight_a1111.webui import model_folders

    offsets = random_offsets(a1111.unet, 8, seed=1)
    offsets["label_emb.0.0.weight"] = torch.zeros(4, 4, dtype=torch.float16)
    write_offsets(a1111.model_dir / "iclight_sdxl_fc.safetensors", offsets, "ldm")
    names = [m.name for m in model_folders.model_files()]
    assert "iclight_sdxl_fc.safetensors" not in names
    assert "not listing" in capsys.readouterr().out


def test_output_and_colour_settings_round_trip_through_api_infotext_and_paste(a1111):
    """Positional (schema order, new parameters last) and named API forms; the infotext records each step
    and pasting it restores them."""
    from modules import processing
    from modules.infotext_utils import paste_values

    from iclight_a1111.generation.params import defaults

    script_module()
    named = {"enabled": True, "output": "Original background", "light_background": 0.5, "preserve_color": 0.25,
             "keep_raw": True, "restore_detail": True}
    positional = [{**defaults(), **named}[p.key] for p in PARAMS]
    rgba = subject(64, alpha=True)
    for args in ([named], positional):
        p = img2img(args, [pil(rgba)], steps=2, denoising_strength=0.9)
        processed = processing.process_images(p)
        assert len(processed.images) == 2, "expected the result and its raw relight"
        params = dict(p.extra_generation_params)
        assert (params["IC-Light output"], params["IC-Light light the background"], params["IC-Light preserve color"],
                params["IC-Light keep the raw relight"]) == ("Original background", "0.5", "0.25", "True")
        script, _ = panels()["img2img"]
        values = dict(zip([key for _, key in script.infotext_fields], paste_values(script.infotext_fields, params)))
        assert (values["IC-Light output"], values["IC-Light light the background"], values["IC-Light preserve color"],
                values["IC-Light keep the raw relight"]) == ("Original background", 0.5, 0.25, True)


def test_xyz_axes_for_output_and_preserve_colour_change_the_result(a1111, xyz_axes):
    from modules import processing

    p = txt2img([{"enabled": True, "foreground": subject(64, alpha=True)}], steps=2)
    xyz_axes["IC-Light output"].apply(p, "Transparent", None)
    xyz_axes["IC-Light preserve color"].apply(p, 0.5, None)
    processed = processing.process_images(p)
    assert processed.images[0].mode == "RGBA", "the Output axis value was not used"
    assert p.extra_generation_params["IC-Light preserve color"] == "0.5"
    assert xyz_axes["IC-Light preserve color"].type is float
    assert xyz_axes["IC-Light output"].choices() == ["Generated", "Original background", "Transparent"]
