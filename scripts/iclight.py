"""The IC-Light script in txt2img and img2img: hooks into processing, infotext fields, X/Y/Z axes.
Only glue: the panel is `iclight_a1111.webui.panel`, the work is done in `iclight_a1111`, on the
webui's host (A1111's or Forge's, chosen once here)."""
from modules import script_callbacks, scripts

from iclight_a1111.generation import after_sampling, inpaint_overlay, prepare, sampling
from iclight_a1111.generation.job import JOB_ATTR
from iclight_a1111.generation.params import PARAMS
from iclight_a1111.webui.backend_choice import host
from iclight_a1111.webui.model_folders import model_files
from iclight_a1111.webui.panel import Panel, remember_component
from iclight_a1111.webui.paste_fields import PastedField, complete_pasted_params
from iclight_a1111.webui.xyz_axes import axis_specs

HOST = host()


class IcLightScript(scripts.Script):
    def title(self):
        return "IC-Light"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        panel = Panel(is_img2img)
        panel.build()
        self.panel = panel
        inputs = panel.inputs
        # Each field's target is its name ("Send to img2img" copies fields by name) and reads its value
        # from a pasted or API infotext (see `PastedField`). Hidden fields are restored too; their
        # `change` then shows the controls that apply.
        pasted = [p for p in PARAMS if p.kind != "image"]
        self.infotext_fields = [(inputs[p.key], PastedField(p)) for p in pasted]
        self.paste_field_names = [p.infotext_key for p in pasted]
        return [inputs[p.key] for p in PARAMS]

    def before_process(self, p, *args):
        prepare.prepare_batch(p, args)

    def process(self, p, *args):
        prepare.start(p, args, HOST)

    def process_batch(self, p, *args, **kwargs):
        sampling.drop_replaced_masked_content(p)

    def process_before_every_sampling(self, p, *args, **kwargs):
        sampling.before_sampling(p, kwargs["x"], HOST)

    def postprocess_maskoverlay(self, p, ppmo, *args):
        if getattr(p, JOB_ATTR, None) is not None:
            inpaint_overlay.keep_core_relit(p, ppmo)

    def postprocess_image_after_composite(self, p, pp, *args):
        job = getattr(p, JOB_ATTR, None)
        if job is not None:
            pp.image = after_sampling.finish_result(job, pp.image, p.iteration * p.batch_size + p.batch_index)

    def postprocess(self, p, processed, *args):
        if sampling.finish(p, HOST):
            job = getattr(p, JOB_ATTR)
            save = lambda image, index, infotext, suffix: HOST.save_image(p, image, index, infotext, suffix)  # noqa: E731
            after_sampling.add_extras(job, processed, p.width, p.height, save)


def flatten_transparent_results(params) -> None:
    """The `image_grid` callback (a batch's grid, X/Y/Z's): a new list, since `params.imgs` is A1111's
    own list of results, which must keep their alpha."""
    params.imgs = after_sampling.flattened_for_grid(params.imgs)


def add_xyz_axes() -> None:
    """Append IC-Light axes to the X/Y/Z plot script, once all scripts are loaded."""
    xyz = next((d.module for d in scripts.scripts_data if d.script_class.__module__ in ("xyz_grid.py", "scripts.xyz_grid")), None)
    if xyz is None or any(o.label.startswith("IC-Light") for o in xyz.axis_options):
        return
    for spec in axis_specs(lambda: [m.name for m in model_files()]):
        xyz.axis_options.append(xyz.AxisOption(spec.label, spec.type, spec.apply, choices=spec.choices))


script_callbacks.on_before_ui(add_xyz_axes)
script_callbacks.on_after_component(remember_component)
script_callbacks.on_image_grid(flatten_transparent_results)
script_callbacks.on_infotext_pasted(complete_pasted_params)
