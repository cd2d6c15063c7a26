"""Mirrors modules/shared.py (v1.10.1): the globals the extension reads.

`sd_model` is set by the tests to a real ldm LatentDiffusion; `opts` carries the settings
CFGDenoiser, sampling and image saving read, with A1111's defaults; `opts.add_option` and
`OptionInfo` as modules/options.py has them (the arguments the extension passes, kept).
"""
from types import SimpleNamespace

sd_model = None
cmd_opts = SimpleNamespace(iclight_dir=None, no_hashing=False, lowvram=False, medvram=False)


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None, **kwargs):
        self.default, self.label, self.component, self.component_args = default, label, component, component_args
        self.onchange, self.section = onchange, section


class Options(SimpleNamespace):
    def add_option(self, key, info):
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)


opts = Options(
    data={},
    data_labels={},
    sd_unet="Automatic",
    batch_cond_uncond=True,
    skip_early_cond=0.0,
    s_min_uncond_all=False,
    pad_cond_uncond=False,
    pad_cond_uncond_v0=False,
    samples_save=True,
    samples_format="png",
    img2img_color_correction=False,
    img2img_background_color="#ffffff",
    overlay_inpaint=True,
    return_mask=False,
    return_mask_composite=False,
    return_grid=False,
    enable_pnginfo=True,
)
