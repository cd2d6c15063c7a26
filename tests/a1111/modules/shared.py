"""Mirrors modules/shared.py (v1.10.1): the globals the extension reads.

`cmd_opts` holds the command-line flags read (the API ones as modules/cmd_args.py lines 101-104
define them: `--api`, `--api-auth`, `--nowebui`). `sd_model` is set by the tests to a real ldm LatentDiffusion (A1111 reads it from
`sd_models.model_data`; the stand-in's `model_data` writes it here); `opts` carries the settings
CFGDenoiser, sampling, checkpoint loading and image saving read, with A1111's defaults;
`opts.add_option`, `OptionInfo` (with `.info`) and `options_section` as modules/options.py has them
(lines 13-74, 256-259); `state` with the interrupt flags and the progress fields of
modules/shared_state.py (lines 16-27), which modules/progress.py (102-108) turns into the progress
bar; `latent_upscale_modes` and `latent_upscale_default_mode` as modules/shared_items.py / shared.py
(v1.10.1) have them.
"""
from types import SimpleNamespace

sd_model = None
cmd_opts = SimpleNamespace(iclight_dir=None, no_hashing=False, lowvram=False, medvram=False, api=False, nowebui=False, api_auth=None)


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False, category_id=None):
        self.default, self.label, self.component, self.component_args = default, label, component, component_args
        self.onchange, self.section, self.category_id = onchange, section, category_id
        self.comment_after = comment_after

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self


def options_section(section_identifier, options_dict):
    """A (id, label) or (id, label, category id) section given to each option."""
    for v in options_dict.values():
        if len(section_identifier) == 2:
            v.section = section_identifier
        elif len(section_identifier) == 3:
            v.section = section_identifier[0:2]
            v.category_id = section_identifier[2]
    return options_dict


class State:
    interrupted = False
    skipped = False
    stopping_generation = False
    job = ""
    job_no = 0
    job_count = 0
    sampling_step = 0
    sampling_steps = 0
    textinfo = None


state = State()


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
    img2img_background_color="#ffffff",
    overlay_inpaint=True,
    return_mask=False,
    return_mask_composite=False,
    return_grid=False,
    n_rows=-1,
    grid_background_color="#ffffff",
    enable_pnginfo=True,
)

latent_upscale_default_mode = "Latent"
latent_upscale_modes = {
    "Latent": {"mode": "bilinear", "antialias": False},
    "Latent (antialiased)": {"mode": "bilinear", "antialias": True},
    "Latent (bicubic)": {"mode": "bicubic", "antialias": False},
    "Latent (bicubic antialiased)": {"mode": "bicubic", "antialias": True},
    "Latent (nearest)": {"mode": "nearest", "antialias": False},
    "Latent (nearest-exact)": {"mode": "nearest-exact", "antialias": False},
}
