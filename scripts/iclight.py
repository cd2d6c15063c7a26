"""The IC-Light panel in txt2img and img2img: UI from the parameter schema, hooks into processing,
infotext paste, X/Y/Z axes. Only A1111 glue: the work is done in `iclight_a1111`."""
import gradio as gr
from modules import script_callbacks, scripts
from modules.ui_components import InputAccordion, ToolButton

from iclight_a1111 import a1111_adapter, after_sampling, generation
from iclight_a1111.errors import IcLightError
from iclight_a1111.model_files import OFFICIAL_FILES, select_model
from iclight_a1111.params import PARAMS, PARAMS_BY_KEY, Param
from iclight_a1111.xyz_axes import axis_specs

HOST = a1111_adapter.A1111Host()
HINT = (
    "Reference settings: **denoising strength about 0.9** (img2img, fc), **CFG scale about 2**, "
    "DPM++ 2M SDE Karras, 25 steps, 512x640; hires. fix 1.5x at denoising 0.5. "
    "img2img: the img2img picture is the subject, the light becomes the initial image. "
    "txt2img: upload the subject as Foreground. An RGBA subject is cut out by its alpha."
)


def model_labels() -> list[str]:
    return [m.label for m in a1111_adapter.model_files()]


def model_label_for(name: str | None) -> str:
    model = select_model(a1111_adapter.model_files(), name or "")
    return model.label if model else (name or "")


def download_official() -> dict:
    messages = []
    for name in ("iclight_sd15_fc.safetensors", "iclight_sd15_fbc.safetensors"):
        try:
            a1111_adapter.download_official(name)
            messages.append(f"{name}: ready")
        except IcLightError as e:
            messages.append(str(e))
    gr.Info(" | ".join(messages))
    return gr.update(choices=model_labels())


def component(param: Param, is_img2img: bool):
    """The gradio input for one parameter of the schema."""
    elem_id = f"iclight_{param.key}_{'img2img' if is_img2img else 'txt2img'}"
    if param.key == "model":
        labels = model_labels()
        default = select_model(a1111_adapter.model_files(), "")
        with gr.Row():
            dropdown = gr.Dropdown(labels, value=default.label if default else None, label=param.label, info=param.help,
                                   elem_id=elem_id, allow_custom_value=True)
            refresh = ToolButton(value="\U0001f504", elem_id=elem_id + "_refresh")
            refresh.click(fn=lambda: gr.update(choices=model_labels()), outputs=[dropdown])
            if not labels:
                download = gr.Button(f"Download {' + '.join(n for n in OFFICIAL_FILES if 'fcon' not in n)}")
                download.click(fn=download_official, outputs=[dropdown])
        return dropdown
    if param.kind == "choice":
        return gr.Radio(list(param.choices), value=param.default, label=param.label, info=param.help, elem_id=elem_id)
    if param.kind == "image":
        visible = not (is_img2img and param.key == "foreground")
        return gr.Image(label=f"{param.label} ({param.help})", type="numpy", image_mode="RGBA", source="upload",
                        elem_id=elem_id, visible=visible)
    if param.kind == "number":
        return gr.Slider(param.minimum, param.maximum, value=param.default, step=param.step, label=param.label,
                         info=param.help, elem_id=elem_id)
    if param.kind == "color":
        return gr.ColorPicker(value=param.default, label=param.label, info=param.help, elem_id=elem_id)
    return gr.Checkbox(value=param.default, label=param.label, info=param.help, elem_id=elem_id)


class IcLightScript(scripts.Script):
    def title(self):
        return "IC-Light"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        inputs = {}
        with InputAccordion(False, label="IC-Light", elem_id=f"iclight_{'img2img' if is_img2img else 'txt2img'}") as enabled:
            inputs["enabled"] = enabled
            gr.Markdown(HINT)
            for param in PARAMS[1:]:
                inputs[param.key] = component(param, is_img2img)
        # Named fields (not callables): "Send to img2img" copies only fields named in paste_field_names.
        # `on_infotext_pasted` supplies "IC-Light enabled", which the infotext implies, and the model's label.
        pasted = [p for p in PARAMS if p.kind != "image"]
        self.infotext_fields = [(inputs[p.key], p.infotext_key) for p in pasted]
        self.paste_field_names = [p.infotext_key for p in pasted]
        return [inputs[p.key] for p in PARAMS]

    def before_process(self, p, *args):
        generation.prepare_batch(p, args)

    def process(self, p, *args):
        generation.start(p, args, HOST)

    def process_before_every_sampling(self, p, *args, **kwargs):
        generation.before_sampling(p, kwargs["x"], HOST)

    def postprocess_image_after_composite(self, p, pp, *args):
        job = getattr(p, generation.JOB_ATTR, None)
        if job is not None:
            pp.image = after_sampling.finish_result(job, pp.image, p.iteration * p.batch_size + p.batch_index)

    def postprocess(self, p, processed, *args):
        job = getattr(p, generation.JOB_ATTR, None)
        if job is not None:
            save = lambda image, index, infotext, suffix: HOST.save_image(p, image, index, infotext, suffix)  # noqa: E731
            after_sampling.add_extras(job, processed, p.width, p.height, save)


def on_infotext_pasted(infotext: str, params: dict) -> None:
    """IC-Light is on exactly when the infotext records an IC-Light model; the model as its dropdown label."""
    model_key = PARAMS_BY_KEY["model"].infotext_key
    params[PARAMS_BY_KEY["enabled"].infotext_key] = str(model_key in params)
    if model_key in params:
        params[model_key] = model_label_for(params[model_key])


def add_xyz_axes() -> None:
    """Append IC-Light axes to the X/Y/Z plot script, once all scripts are loaded."""
    xyz = next((d.module for d in scripts.scripts_data if d.script_class.__module__ in ("xyz_grid.py", "scripts.xyz_grid")), None)
    if xyz is None or any(o.label.startswith("IC-Light") for o in xyz.axis_options):
        return
    for spec in axis_specs(lambda: [m.name for m in a1111_adapter.model_files()]):
        xyz.axis_options.append(xyz.AxisOption(spec.label, spec.type, spec.apply, choices=spec.choices))


script_callbacks.on_before_ui(add_xyz_axes)
script_callbacks.on_infotext_pasted(on_infotext_pasted)
