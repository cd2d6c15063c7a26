"""Mirrors modules/shared.py (v1.10.1): the globals the extension reads.

`sd_model` is set by the tests to a real ldm LatentDiffusion; `opts` carries the settings
CFGDenoiser reads, with A1111's defaults.
"""
from types import SimpleNamespace

sd_model = None
cmd_opts = SimpleNamespace(iclight_dir=None)
opts = SimpleNamespace(
    data={},
    sd_unet="Automatic",
    batch_cond_uncond=True,
    skip_early_cond=0.0,
    s_min_uncond_all=False,
    pad_cond_uncond=False,
    pad_cond_uncond_v0=False,
)
