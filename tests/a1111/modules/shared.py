"""Mirrors modules/shared.py (v1.10.1): the globals the extension reads.

`sd_model` is set by the tests to a real ldm LatentDiffusion (A1111 reads it from
`sd_models.model_data`; the stand-in's `model_data` writes it here); `opts` carries the settings
CFGDenoiser, sampling, checkpoint loading and image saving read, with A1111's defaults;
`opts.add_option` and `OptionInfo` as modules/options.py has them (the arguments the extension
passes, kept). `state` is modules/shared_state.py's interrupt flags; `latent_upscale_modes` and
`latent_upscale_default_mode` as modules/shared_items.py / shared.py (v1.10.1) have them.
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
    sd_model_checkpoint=None,
    sd_checkpoints_limit=1,
    sd_checkpoints_keep_in_cpu=True,
    refiner_switch_by_sample_steps=False,
    hires_fix_refiner_pass="second pass",
)
state = SimpleNamespace(interrupted=False, skipped=False, stopping_generation=False)

latent_upscale_default_mode = "Latent"
latent_upscale_modes = {
    "Latent": {"mode": "bilinear", "antialias": False},
    "Latent (antialiased)": {"mode": "bilinear", "antialias": True},
    "Latent (bicubic)": {"mode": "bicubic", "antialias": False},
    "Latent (bicubic antialiased)": {"mode": "bicubic", "antialias": True},
    "Latent (nearest)": {"mode": "nearest", "antialias": False},
    "Latent (nearest-exact)": {"mode": "nearest-exact", "antialias": False},
}
