"""The panel: controls shown by the schema's rules, the light-map preview and its clicks, the A1111
components it reads (through `on_after_component`), paste restoring hidden fields."""

import numpy as np
import pytest

from generation_harness import script_module, subject
from iclight_a1111.webui import panel as panel_module
from iclight_a1111.webui.light_preview import preview_image, preview_size, values_for_preview
from iclight_a1111.generation.params import PARAMS, defaults
from iclight_a1111.images.placed_lights import parse_lights


def build(is_img2img, a1111_components=()):
    """A panel built as A1111 builds it: its own components first (announced to `on_after_component`
    callbacks, as A1111's patched gradio constructor does), then the script's `ui`."""
    import gradio as gr
    from modules import script_callbacks

    module = script_module()
    panel_module.WATCHED.clear()
    with gr.Blocks():
        made = {}
        for elem_id, make in a1111_components:
            made[elem_id] = make(elem_id)
            script_callbacks.after_component_callback(made[elem_id], elem_id=elem_id)
        script = module.IcLightScript()
        script.ui(is_img2img)
    return script.panel, made


def visible(panel):
    return {key for key, c in panel.inputs.items() if c.visible and key != "enabled"}


def test_img2img_fc_at_defaults_shows_only_model_and_light_controls(a1111):
    panel, _ = build(True)
    assert visible(panel) == {"model", "light", "light_color", "shadow_color", "falloff", "remove_background",
                              "restore_detail", "reinforce_foreground", "normal_map", "extra_outputs", "output",
                              "preserve_color"}
    assert panel.preview_row.visible and not panel.lights_column.visible
    assert len(visible(panel)) <= len(PARAMS) // 2 + 1, "the panel shows about as much as before"


def test_txt2img_shows_the_foreground_upload_and_no_light_controls(a1111):
    panel, _ = build(False)
    assert {"foreground", "remove_background"} <= visible(panel)
    assert not {"light", "light_color", "light_map", "background", "background_source"} & visible(panel)
    assert not panel.preview_row.visible


def updates_by_key(panel, **values):
    args = {**{k: defaults()[k] for k in panel.value_keys}, "model": "iclight_sd15_fc.safetensors [fc]", **values}
    updates = panel.visibility(*[args[k] for k in panel.value_keys])
    return {k for k, u in zip(panel.toggled + ["preview", "lights_column", "hint"], updates) if u.get("visible")}


def test_visibility_follows_model_kind_light_and_options(a1111):
    txt2img, _ = build(False)
    fbc = updates_by_key(txt2img, model="iclight_sd15_fbc.safetensors [fbc]")
    assert {"background_source", "background"} <= fbc and "light" not in fbc
    assert "background" not in updates_by_key(txt2img, model="iclight_sd15_fbc.safetensors [fbc]", background_source="Top")
    img2img, _ = build(True)
    assert {"light_map"} <= updates_by_key(img2img, light="Custom")
    assert {"lights", "lights_column"} <= updates_by_key(img2img, light="Placed")
    assert {"detail_size", "detail_source"} <= updates_by_key(img2img, restore_detail=True)
    assert "normal_sigma" in updates_by_key(img2img, normal_map=True)
    assert "preview" not in updates_by_key(img2img, model="iclight_sd15_fbc.safetensors [fbc]")


def test_visibility_follows_every_change_a_paste_makes(a1111):
    """A paste or "Send to" sets hidden fields too; the change events of the fields that decide
    visibility then show the controls that apply."""
    import gradio as gr

    script = script_module().IcLightScript()
    with gr.Blocks() as blocks:
        script.ui(True)
    panel = script.panel
    outputs = [c._id for c in [panel.inputs[k] for k in panel.toggled] + [panel.preview_row, panel.lights_column, panel.hint]]
    wired = {target for dep in blocks.dependencies if dep["trigger"] == "change" and dep["outputs"] == outputs
             for target in dep["targets"]}
    deciding = {panel.inputs[k]._id for k in ("model", "light", "normal_map", "restore_detail", "background_source")}
    assert deciding <= wired, "a field that decides visibility does not update it when a paste sets it"
    fields = {key for _, key in script.infotext_fields}
    assert {p.infotext_key for p in PARAMS if p.kind != "image"} == fields, "a hidden field is not restored by paste"


def built_with_events(is_img2img):
    import gradio as gr

    panel_module.WATCHED.clear()
    script = script_module().IcLightScript()
    with gr.Blocks() as blocks:
        script.ui(is_img2img)
    return blocks, script.panel


@pytest.mark.parametrize("is_img2img", [True, False])
def test_every_help_text_of_the_schema_is_its_controls_hover_title(a1111, is_img2img):
    """A1111 shows help as hover titles: hints.js sets a component's `tooltip` (sent as `webui_tooltip`)
    as the title of the element with its elem_id."""
    _, panel = built_with_events(is_img2img)
    for param in PARAMS:
        control = panel.inputs[param.key]
        config = control.get_config()
        if param.help:
            assert config.get("webui_tooltip") == param.help, f"{param.label}: its help is not shown"
            assert config.get("elem_id"), f"{param.label}: no elem_id, so hints.js cannot find it"
    assert "Falloff" in [p.label for p in PARAMS if p.help] and "Keep the raw relight" in [p.label for p in PARAMS if p.help]


def event_fns(blocks, trigger, component):
    return [(blocks.fns[i].fn, dep) for i, dep in enumerate(blocks.dependencies)
            if dep["trigger"] == trigger and component._id in dep["targets"]]


def test_no_event_moves_the_preview(a1111):
    """The preview's place in its row depends on which of the row's other children are shown: no event
    may show or hide one (the first click used to show the lights list beside it)."""
    blocks, panel = built_with_events(True)
    row = panel.preview.parent
    siblings = {c._id for c in row.children if c is not panel.preview}
    changed = {o for dep in blocks.dependencies for o in dep["outputs"]}
    assert not siblings & changed, "an event shows or hides something beside the preview"
    assert not row.equal_height, "a longer lights list beside the preview stretches its row and shifts it"
    ((place, dep),) = event_fns(blocks, "select", panel.preview)
    assert panel.inputs["light"]._id in dep["outputs"]
    assert {"preview", "lights_column"} <= updates_by_key(panel, light="Placed"), "placing a light hides the preview"


def test_the_preview_has_a_label_and_is_not_shown_for_light_none(a1111):
    import gradio as gr

    _, panel = built_with_events(True)
    captions = [c.value for c in panel.preview_row.children[1].children if isinstance(c, gr.Markdown)]
    assert any("Light map preview" in text and "click" in text.lower() for text in captions), "the preview has no label"
    assert "preview" in updates_by_key(panel, light="Left")
    assert "preview" not in updates_by_key(panel, light="None"), "Light None shows a map no generation uses"


def folded(component, panel):
    """Whether the component is inside a closed accordion of the open IC-Light panel."""
    import gradio as gr

    block = component.parent
    while block is not None and block is not panel.inputs["enabled"].accordion:
        if isinstance(block, gr.Accordion) and not block.open:
            return True
        block = block.parent
    return False


def test_img2img_with_an_fbc_model_shows_what_it_needs_and_a_hint_for_it(a1111):
    blocks, panel = built_with_events(True)
    fn = next(fn for fn, dep in event_fns(blocks, "change", panel.inputs["model"]) if panel.hint._id in dep["outputs"])
    values = {**defaults(), "lights": "", "model": "iclight_sd15_fbc.safetensors [fbc]"}
    updates = dict(zip(panel.toggled + ["preview", "lights_column", "hint"], fn(*[values[k] for k in panel.value_keys])))
    assert updates["background_source"]["visible"] and updates["background"]["visible"]
    assert not folded(panel.inputs["background_source"], panel) and not folded(panel.inputs["background"], panel), \
        "what an fbc generation needs is folded away"
    assert "Background" in updates["hint"]["value"] and "preview" not in updates["hint"]["value"], updates["hint"]
    values["model"] = "iclight_sd15_fc.safetensors [fc]"
    fc_hint = dict(zip(panel.toggled + ["preview", "lights_column", "hint"], fn(*[values[k] for k in panel.value_keys])))["hint"]
    assert "Background" not in fc_hint["value"] and "light" in fc_hint["value"], "the hint does not follow the model"


def test_the_lights_list_is_written_in_the_format_its_placeholder_and_the_readme_show(a1111):
    import re
    from pathlib import Path

    from iclight_a1111.images.placed_lights import compact_text
    from iclight_a1111.webui.light_preview import lights_text_with_click

    _, panel = built_with_events(True)
    placeholder = panel.inputs["lights"].placeholder
    form, example = re.fullmatch(r"(\S+) per line, e\.g\. (\S+)", placeholder).groups()
    assert compact_text(parse_lights(example)) == example, "the placeholder's example is not the list's format"
    written = lights_text_with_click(example, (10, 20), 512, 640, "#ffd0a0")
    assert all(len(line.split(",")) == len(form.split(",")) and " " not in line for line in written.splitlines()), written
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"`{form}`" in readme, "the README shows another format for the lights list"


def test_preview_is_the_light_map_at_the_output_aspect(a1111):
    values = values_for_preview({"light": "Placed", "lights": "0.25,0.5,0.4,#ff8000,1"})
    image = preview_image(values, 1024, 512, None)
    assert image.shape == (128, 256, 3) and preview_size(512, 640) == (205, 256)
    assert image[64, 64, 0] == 0 and image[64, 64, 1] == 0, "no dot marks the placed light"
    assert tuple(image[64, 80]) > tuple(image[64, 200]), "the light is not where it was placed"
    plain = preview_image(values_for_preview({"light": "Left"}), 512, 512, None)
    from iclight_a1111.images.light_maps import fc_light_map

    assert np.array_equal(plain, fc_light_map("Left", 256, 256)), "a preset's preview is not its light map"


def test_preview_draws_the_subject_faintly_by_its_alpha(a1111):
    person = subject(64, alpha=True)
    values = values_for_preview({"light": "Ambient"})
    image = preview_image(values, 512, 512, person).astype(int)
    assert (image[0, 0] == 127).all(), "the subject's transparent surroundings were drawn"
    centre = np.array(preview_image(values, 512, 512, None)[128, 128]).astype(int)
    assert (image[128, 128] != centre).any(), "the subject is not drawn over the light map"


def click_preview(blocks, panel, index, *inputs):
    """A click on the preview as gradio 3.41 delivers it: the select event's data goes in through
    `special_args`, which fills only positional parameters ahead of any `*args`."""
    import gradio as gr
    from gradio.helpers import special_args

    (fn,) = [blocks.fns[i].fn for i, dep in enumerate(blocks.dependencies)
             if dep["trigger"] == "select" and dep["targets"] == [panel.preview._id]]
    args, _, _ = special_args(fn, list(inputs), event_data=gr.EventData(panel.preview, {"index": index, "value": None}))
    return fn(*args)


def test_clicking_the_preview_places_a_light_and_chooses_placed(a1111):
    import gradio as gr

    script = script_module().IcLightScript()
    panel_module.WATCHED.clear()
    with gr.Blocks() as blocks:
        for elem_id, value in (("img2img_width", 512), ("img2img_height", 640)):
            panel_module.remember_component(gr.Slider(64, 2048, value=value), elem_id=elem_id)
        script.ui(True)
    panel = script.panel
    w, h = preview_size(512, 640)
    text, light = click_preview(blocks, panel, [w // 4, h // 2], "", "#ffd0a0", 512, 640)
    assert light == "Placed"
    (placed,) = parse_lights(text)
    assert abs(placed.x - 0.25) < 0.01 and abs(placed.y - 0.5) < 0.01 and placed.color == "#ffd0a0"
    text, _ = click_preview(blocks, panel, [0, 0], text, "#ffffff", 512, 640)
    assert len(parse_lights(text)) == 2, "a second click does not add a second light"
    from iclight_a1111.webui.light_preview import lights_text_without_last

    assert parse_lights(lights_text_without_last(text)) == (placed,)


def test_preview_reads_the_img2img_size_and_picture_through_on_after_component(a1111):
    import gradio as gr

    components = [("img2img_width", lambda i: gr.Slider(64, 2048, value=768, elem_id=i)),
                  ("img2img_height", lambda i: gr.Slider(64, 2048, value=384, elem_id=i)),
                  ("img2img_image", lambda i: gr.Image(type="pil", image_mode="RGBA", elem_id=i))]
    panel, made = build(True, components)
    assert panel.size == [made["img2img_width"], made["img2img_height"]] and panel.picture == [made["img2img_image"]]
    from PIL import Image

    args = [defaults()[k] if k != "lights" else "" for k in panel_module.PREVIEW_KEYS]
    with_picture = panel.render_preview(*args, 768, 384, Image.fromarray(subject(64)))
    without = panel.render_preview(*args, 768, 384, None)
    assert with_picture.shape == (128, 256, 3), "the preview does not have the img2img output's aspect"
    assert not np.array_equal(with_picture, without), "the img2img picture is not drawn over the preview"


def test_on_forge_the_preview_reads_the_picture_of_the_img2img_canvas(a1111):
    """Forge's img2img box (modules_forge/forge_canvas/canvas.py at dfdcbab6, 118-160): an HTML block with the
    elem_id, then two hidden text fields (gradio Textbox subclasses) announced with classes, the second holding
    the picture as a PNG data URL."""
    import base64
    import io

    import gradio as gr
    from PIL import Image

    def canvas_field(kind):
        return lambda i: gr.Textbox(visible=False, elem_id="uuid_0", elem_classes=[f"logical_image_{kind}"])

    components = [("img2img_image", lambda i: gr.HTML("<div>canvas</div>", elem_id=i)),
                  ("uuid_foreground", canvas_field("foreground")), ("uuid_background", canvas_field("background"))]
    from modules import script_callbacks

    module = script_module()
    panel_module.WATCHED.clear()
    with gr.Blocks():
        made = {}
        for name, make in components:
            made[name] = make(name)
            elem_id = "img2img_image" if name == "img2img_image" else "uuid_0"
            script_callbacks.after_component_callback(made[name], elem_id=elem_id, elem_classes=made[name].elem_classes)
        script = module.IcLightScript()
        script.ui(True)
    panel = script.panel
    assert panel.picture == [made["uuid_background"]], "the preview does not read the canvas's picture"
    buffer = io.BytesIO()
    Image.fromarray(subject(64)).convert("RGBA").save(buffer, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    args = [defaults()[k] if k != "lights" else "" for k in panel_module.PREVIEW_KEYS]
    assert not np.array_equal(panel.render_preview(*args, data_url), panel.render_preview(*args, None)), \
        "the canvas's picture is not drawn over the preview"


@pytest.mark.parametrize("label,variant", [("iclight_sd15_fbc.safetensors [fbc]", "fbc"), ("", "fc"), ("missing.safetensors", "fc")])
def test_model_kind_from_the_dropdown_label(a1111, label, variant):
    assert panel_module.variant_of(label) == variant


def corner_marker_picture(size=64):
    """A grey square picture with a white block in its top-left corner: where the block lands in the
    output shows how the picture was laid out."""
    picture = np.full((size, size, 3), 100, np.uint8)
    picture[: size // 8, : size // 8] = 255
    return picture


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_preview_lays_the_img2img_picture_out_by_the_resize_mode(a1111, mode):
    """The faint picture lands where the generation puts it (the same `Layout`), so a light clicked on
    the subject's face lands on the face: v1.10.1 ui.py line 618, `resize_mode` (elem_id "resize_mode",
    type "index") is created in the "image" category, before the scripts' panels."""
    import gradio as gr

    from iclight_a1111.images.resize_modes import Layout

    components = [("img2img_width", lambda i: gr.Slider(64, 2048, value=512, elem_id=i)),
                  ("img2img_height", lambda i: gr.Slider(64, 2048, value=256, elem_id=i)),
                  ("img2img_image", lambda i: gr.Image(type="pil", image_mode="RGBA", elem_id=i)),
                  ("resize_mode", lambda i: gr.Radio(["Just resize", "Crop and resize", "Resize and fill",
                                                      "Just resize (latent upscale)"], type="index", value="Just resize",
                                                     elem_id=i))]
    panel, made = build(True, components)
    from PIL import Image

    picture = corner_marker_picture()
    args = [defaults()[k] if k != "lights" else "" for k in panel_module.PREVIEW_KEYS]
    args[panel_module.PREVIEW_KEYS.index("light")] = "None"
    shown = panel.render_preview(*args, 512, 256, Image.fromarray(picture), mode).astype(np.float32)
    w, h = preview_size(512, 256)
    laid_out = Layout(mode).fit(picture, w, h).astype(np.float32)
    expected = 127 * 0.7 + laid_out * 0.3  # the faint picture over the grey of Light None
    assert np.abs(shown - expected).max() <= 1, f"resize mode {mode}: the preview does not lay the picture out as the generation"


def test_txt2img_preview_lays_the_foreground_out_as_the_reference(a1111):
    from iclight_a1111.images.resize_modes import REFERENCE

    picture = corner_marker_picture()
    values = values_for_preview({"light": "None", "foreground": picture})
    shown = preview_image(values, 512, 256, picture).astype(np.float32)
    expected = 127 * 0.7 + REFERENCE.fit(picture, 256, 128).astype(np.float32) * 0.3
    assert np.abs(shown - expected).max() <= 1, "txt2img's preview does not crop the foreground as the generation does"
