"""The IC-Light panel of one tab, built from the parameter schema: its controls, when each is shown,
the light-map preview and the wiring between them."""
from __future__ import annotations

import gradio as gr
from modules.ui_components import InputAccordion, ToolButton

from ..errors import IcLightError
from ..generation.params import PARAMS, PARAMS_BY_KEY, Param, defaults, shown_keys
from ..images.resize_modes import REFERENCE, img2img_layout
from ..unet.model_files import OFFICIAL_FILES, select_model
from .light_preview import (
    DEFAULT_OUTPUT_SIZE, lights_text_with_click, lights_text_without_last, preview_image, subject_array, values_for_preview,
)
from .model_folders import download_official, model_files

REFERENCE_SETTINGS = {True: "Reference: denoising about **0.9**, CFG about **2**, DPM++ 2M SDE Karras, 25 steps, 512x640.",
                      False: "Reference: CFG about **2**, DPM++ 2M SDE Karras, 25 steps, 512x640."}
# What a generation needs besides the prompt, by tab (is img2img) and model kind.
NEEDS = {
    (True, "fc"): "Choose the light; click the preview to place one.",
    (True, "fbc"): "fbc relights the picture to match a **Background**: choose it beside the model "
                   "(*Upload* needs the Background image below).",
    (False, "fc"): "Upload the subject under *Subject*.",
    (False, "fbc"): "fbc: upload the subject under *Subject* and choose the **Background** beside the model "
                    "(*Upload* needs the Background image below).",
}
PREVIEW_CAPTION = ("**Light map preview**: what the generation starts from, at the output's aspect, your picture "
                   "faintly over it. Click it to place a light.")
LIGHTS_PLACEHOLDER = "x,y,radius,#color,intensity per line, e.g. 0.25,0.5,0.5,#ffffff,1"


def hint(is_img2img: bool, variant: str) -> str:
    return f"{NEEDS[is_img2img, variant]} {REFERENCE_SETTINGS[is_img2img]}"


def preview_shown(shown: set[str], light: str) -> bool:
    """The preview shows a light map: where one is chosen (not replaced by the normal map's four) and
    made (Light None keeps the img2img picture)."""
    return "light" in shown and light != "None"


# The webui's components the panel reads, by elem_id (kept by `remember_component`): the output size,
# the img2img picture and its resize mode (an index), for the preview.
WATCHED_IDS = ("txt2img_width", "txt2img_height", "img2img_width", "img2img_height", "img2img_image", "resize_mode")
WATCHED: dict[str, gr.components.Component] = {}
# Forge's img2img box is a canvas (modules_forge/forge_canvas/canvas.py at dfdcbab6, lines 118-160): an HTML block
# of that elem_id, then hidden text fields holding its drawing and, in the one of this class, its picture as a
# PNG data URL.
CANVAS_PICTURE_CLASS = "logical_image_background"
# What the preview shows, read from the panel.
PREVIEW_KEYS = ("light", "lights", "light_color", "shadow_color", "falloff", "normal_map", "light_map", "foreground")


def remember_component(component, **kwargs) -> None:
    elem_id = kwargs.get("elem_id")
    if elem_id in WATCHED_IDS:
        WATCHED[elem_id] = component
    elif CANVAS_PICTURE_CLASS in (kwargs.get("elem_classes") or ()) and isinstance(WATCHED.get("img2img_image"), gr.HTML):
        WATCHED["img2img_image"] = component  # the first canvas after img2img's HTML block is its picture's


def model_labels() -> list[str]:
    return [m.label for m in model_files()]


def model_label_for(name: str | None) -> str:
    model = select_model(model_files(), name or "")
    return model.label if model else (name or "")


def variant_of(label: str | None) -> str:
    """The kind of the chosen model (fc when none is found, so the panel shows the fc controls)."""
    model = select_model(model_files(), label or "")
    return model.variant if model else "fc"


def download_official_models() -> dict:
    messages = []
    for name in ("iclight_sd15_fc.safetensors", "iclight_sd15_fbc.safetensors"):
        try:
            download_official(name)
            messages.append(f"{name}: ready")
        except IcLightError as e:
            messages.append(str(e))
    gr.Info(" | ".join(messages))
    return gr.update(choices=model_labels())


def component(param: Param, elem_id: str, visible: bool, **layout):
    """The gradio input for one parameter of the schema. Its help is the hover title, as A1111 shows
    help (the `tooltip` its gradio patch turns into the element's title), so the panel stays short."""
    common = dict(label=param.label, elem_id=elem_id, visible=visible, tooltip=param.help or None, **layout)
    if param.kind == "choice":
        if len(param.choices) > 4:
            return gr.Dropdown(list(param.choices), value=param.default, **common)
        return gr.Radio(list(param.choices), value=param.default, **common)
    if param.kind == "image":
        return gr.Image(type="numpy", image_mode="RGBA", source="upload", height=192, **common)
    if param.kind == "number":
        return gr.Slider(param.minimum, param.maximum, value=param.default, step=param.step, **common)
    if param.kind == "color":
        return gr.ColorPicker(value=param.default, **common)
    if param.kind == "lights":
        return gr.Textbox(value="", lines=2, max_lines=6, placeholder=LIGHTS_PLACEHOLDER, **common)
    return gr.Checkbox(value=param.default, **common)


class Panel:
    """One tab's IC-Light panel: the inputs by parameter key, the preview and the wiring between them."""

    def __init__(self, is_img2img: bool) -> None:
        self.is_img2img = is_img2img
        self.tab = "img2img" if is_img2img else "txt2img"
        self.inputs: dict[str, gr.components.Component] = {}
        self.default_model = select_model(model_files(), "")
        self.variant = self.default_model.variant if self.default_model else "fc"
        self.shown = shown_keys(defaults(), self.variant, is_img2img)

    def add(self, key: str, **layout) -> gr.components.Component:
        self.inputs[key] = component(PARAMS_BY_KEY[key], f"iclight_{key}_{self.tab}", key in self.shown, **layout)
        return self.inputs[key]

    def build(self) -> None:
        with InputAccordion(False, label="IC-Light", elem_id=f"iclight_{self.tab}") as enabled:
            self.inputs["enabled"] = enabled
            self.hint = gr.Markdown(hint(self.is_img2img, self.variant), elem_id=f"iclight_hint_{self.tab}")
            self.build_model_and_light()
            # What fbc needs is in view, not folded: the background choice (beside the model) and its upload.
            self.add("background")
            with gr.Accordion("Subject", open=False, elem_id=f"iclight_subject_{self.tab}"):
                self.add("remove_background")
                self.add("foreground")
            with gr.Accordion("After sampling", open=False, elem_id=f"iclight_after_{self.tab}"):
                with gr.Row():
                    for key in ("restore_detail", "reinforce_foreground", "normal_map", "extra_outputs"):
                        self.add(key)
                with gr.Row():
                    for key in ("detail_size", "detail_source", "normal_sigma"):
                        self.add(key)
                with gr.Row():
                    for key in ("output", "light_background", "preserve_color", "keep_raw"):
                        self.add(key)
        self.wire()

    def build_model_and_light(self) -> None:
        labels = model_labels()
        with gr.Row():
            # Twice the share of the row, and room for a whole label ("iclight_sd15_fc.safetensors [fc]"), its longest value.
            model = gr.Dropdown(labels, value=self.default_model.label if self.default_model else None, label="Model",
                                elem_id=f"iclight_model_{self.tab}", allow_custom_value=True, scale=2, min_width=240,
                                tooltip=PARAMS_BY_KEY["model"].help)
            self.inputs["model"] = model
            refresh = ToolButton(value="\U0001f504", elem_id=f"iclight_model_{self.tab}_refresh")
            refresh.click(fn=lambda: gr.update(choices=model_labels()), outputs=[model])
            if not labels:
                download = gr.Button(f"Download {' + '.join(n for n in OFFICIAL_FILES if 'fcon' not in n)}")
                download.click(fn=download_official_models, outputs=[model])
            # Narrow enough that the model, the refresh button and these stay in one row: gradio 4 (Forge)
            # leaves hidden components their minimum width.
            for key in ("light", "hires_pass", "background_source"):
                self.add(key, min_width=120)
        # The preview's row never changes while it is shown: its caption column is always there and
        # the lights list appears inside it, so a click does not move the preview under the pointer.
        # Not of equal height: a longer lights list must not stretch (and so shift) the preview.
        with gr.Row(visible=preview_shown(self.shown, defaults()["light"]), equal_height=False) as self.preview_row:
            # The label is the caption beside it: a label badge would cover the top-left corner, where
            # a click must place a light too.
            self.watch_webui_components()
            initial = self.render_preview(*[PARAMS_BY_KEY[k].default for k in PREVIEW_KEYS],
                                          *[c.value for c in self.size + self.picture + self.resize_mode])
            self.preview = gr.Image(initial, label="Light map preview", show_label=False, type="numpy", interactive=False,
                                    height=192, show_download_button=False, elem_id=f"iclight_preview_{self.tab}")
            with gr.Column():
                gr.Markdown(PREVIEW_CAPTION, elem_id=f"iclight_preview_caption_{self.tab}")
                with gr.Column(visible="lights" in self.shown) as self.lights_column:
                    self.add("lights")
                    with gr.Row():
                        self.remove_last = gr.Button("Remove last", size="sm", elem_id=f"iclight_remove_light_{self.tab}")
                        self.clear = gr.Button("Clear", size="sm", elem_id=f"iclight_clear_lights_{self.tab}")
        with gr.Row():
            for key in ("light_color", "shadow_color", "falloff"):
                self.add(key)
        self.add("light_map")

    def watch_webui_components(self) -> None:
        """The output size and the img2img picture, where the webui created them before this panel."""
        self.size = [WATCHED[f"{self.tab}_{side}"] for side in ("width", "height") if f"{self.tab}_{side}" in WATCHED]
        self.picture = [WATCHED["img2img_image"]] if self.is_img2img and "img2img_image" in WATCHED else []
        self.resize_mode = [WATCHED["resize_mode"]] if self.is_img2img and "resize_mode" in WATCHED else []

    def wire(self) -> None:
        """Visibility and preview follow the inputs, also when a paste or "Send to" sets them."""
        self.value_keys = [p.key for p in PARAMS if p.kind != "image"]
        self.toggled = [p.key for p in PARAMS if p.key not in ("enabled", "model")]
        for key in ("model", "light", "normal_map", "restore_detail", "background_source", "output", "preserve_color"):
            self.inputs[key].change(fn=self.visibility, inputs=[self.inputs[k] for k in self.value_keys],
                                    outputs=[self.inputs[k] for k in self.toggled] + [self.preview_row, self.lights_column, self.hint],
                                    show_progress=False)
        preview_inputs = [self.inputs[k] for k in PREVIEW_KEYS] + self.size + self.picture + self.resize_mode
        for trigger in preview_inputs:
            trigger.change(fn=self.render_preview, inputs=preview_inputs, outputs=[self.preview], show_progress=False)

        lights = self.inputs["lights"]
        self.preview.select(fn=self.place, inputs=[lights, self.inputs["light_color"]] + self.size,
                            outputs=[lights, self.inputs["light"]], show_progress=False)
        self.remove_last.click(fn=lights_text_without_last, inputs=[lights], outputs=[lights], show_progress=False)
        self.clear.click(fn=lambda: "", outputs=[lights], show_progress=False)

    def visibility(self, *args) -> list[dict]:
        """Show exactly the controls the schema says apply to these values, model kind and tab, and the
        hint for that model kind."""
        values = values_for_preview(dict(zip(self.value_keys, args)))
        variant = variant_of(values["model"])
        shown = shown_keys(values, variant, self.is_img2img)
        return [gr.update(visible=k in shown) for k in self.toggled] + [
            gr.update(visible=preview_shown(shown, values["light"])), gr.update(visible="lights" in shown),
            gr.update(value=hint(self.is_img2img, variant))]

    def render_preview(self, *args):
        """The preview for the values of PREVIEW_KEYS, then the output size, the img2img picture and
        its resize mode when known: laid out as the generation will lay them out."""
        values = values_for_preview(dict(zip(PREVIEW_KEYS, args)))
        rest = list(args[len(PREVIEW_KEYS):])
        width, height = rest[:2] if self.size else DEFAULT_OUTPUT_SIZE
        rest = rest[len(self.size):]
        picture = rest.pop(0) if self.picture else None
        subject = values["foreground"]
        if subject is None and self.picture:
            subject = subject_array(picture)
        layout = REFERENCE
        if self.is_img2img:
            mode = rest[0] if self.resize_mode else 0  # A1111's default: Just resize
            layout = img2img_layout(mode)
        return preview_image(values, width, height, subject, layout)

    def place(self, evt: gr.SelectData, text: str, light_color: str, *size):
        """A click on the preview: a light there, and Light set to Placed. `evt` comes first: gradio
        passes event data only into a positional parameter ahead of `*size`."""
        width, height = size if size else DEFAULT_OUTPUT_SIZE
        return lights_text_with_click(text, evt.index, width, height, light_color), "Placed"
