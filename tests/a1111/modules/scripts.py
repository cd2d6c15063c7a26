"""Mirrors modules/scripts.py (v1.10.1): the `Script` base, `AlwaysVisible`, `scripts_data`, the hook
arguments (`MaskBlendArgs`, `PostSampleArgs`, `PostProcessMaskOverlayArgs`, lines 16-40) and the
`ScriptRunner` hooks used by processing, each script in the runner's order (A1111's default order:
built-in extensions before installed ones). Like A1111, each hook call is wrapped in try/except that
only reports the traceback (`errors.report`): an exception in a script hook does not stop the
generation."""
import traceback
from collections import namedtuple

AlwaysVisible = object()
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])


class PostprocessImageArgs:
    def __init__(self, image):
        self.image = image


class MaskBlendArgs:
    """Lines 16-26: the final blend has no denoiser."""

    def __init__(self, current_latent, nmask, init_latent, mask, blended_latent, denoiser=None, sigma=None):
        self.current_latent, self.nmask, self.init_latent, self.mask = current_latent, nmask, init_latent, mask
        self.blended_latent, self.denoiser, self.sigma = blended_latent, denoiser, sigma
        self.is_final_blend = denoiser is None


class PostSampleArgs:
    def __init__(self, samples):
        self.samples = samples


class PostProcessMaskOverlayArgs:
    def __init__(self, index, mask_for_overlay, overlay_image):
        self.index, self.mask_for_overlay, self.overlay_image = index, mask_for_overlay, overlay_image

scripts_data = []
reported_errors = []


class Script:
    filename = None  # the script file's path, set by A1111's loader (scripts.py line 594)
    args_from = None
    args_to = None
    alwayson = False
    infotext_fields = None
    paste_field_names = None

    def title(self):
        raise NotImplementedError()

    def show(self, is_img2img):
        return True

    def ui(self, is_img2img):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def on_mask_blend(self, p, mba, *args):
        pass

    def post_sample(self, p, ps, *args):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_maskoverlay(self, p, ppmo, *args):
        pass

    def postprocess_image(self, p, pp, *args):
        pass

    def postprocess_image_after_composite(self, p, pp, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass


def report(message):
    reported_errors.append(message + "\n" + traceback.format_exc())


class ScriptRunner:
    def __init__(self, alwayson_scripts):
        self.alwayson_scripts = alwayson_scripts

    def _each(self, hook, p, *args, **kwargs):
        for script in self.alwayson_scripts:
            try:
                script_args = p.script_args[script.args_from:script.args_to]
                getattr(script, hook)(p, *args, *script_args, **kwargs)
            except Exception:
                report(f"Error running {hook}: {script.title()}")

    def before_process(self, p):
        self._each("before_process", p)

    def process(self, p):
        self._each("process", p)

    def before_process_batch(self, p, **kwargs):
        self._each("before_process_batch", p, **kwargs)

    def process_batch(self, p, **kwargs):
        self._each("process_batch", p, **kwargs)

    def process_before_every_sampling(self, p, **kwargs):
        self._each("process_before_every_sampling", p, **kwargs)

    def on_mask_blend(self, p, mba):
        self._each("on_mask_blend", p, mba)

    def post_sample(self, p, ps):
        self._each("post_sample", p, ps)

    def postprocess_batch(self, p, images, **kwargs):
        self._each("postprocess_batch", p, images=images, **kwargs)

    def postprocess_maskoverlay(self, p, ppmo):
        self._each("postprocess_maskoverlay", p, ppmo)

    def postprocess_image(self, p, pp):
        self._each("postprocess_image", p, pp)

    def postprocess_image_after_composite(self, p, pp):
        self._each("postprocess_image_after_composite", p, pp)

    def postprocess(self, p, processed):
        self._each("postprocess", p, processed)
