"""Runs generations the way A1111 v1.10.1 does (processing and ScriptRunner stand-ins) with the real
IC-Light script loaded from `scripts/iclight.py`."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iclight_a1111.generation.params import PARAMS

ROOT = Path(__file__).parents[1]


@functools.lru_cache(maxsize=None)
def script_module(name="iclight"):
    """scripts/<name>.py, imported from its path (once) as A1111's script loader does."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def settings_module():
    """scripts/iclight_settings.py, loaded once as A1111 loads it: registers the `model_loaded` callback."""
    spec = importlib.util.spec_from_file_location("iclight_settings_loaded", ROOT / "scripts" / "iclight_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_runner():
    from modules.scripts import ScriptRunner

    script = script_module().IcLightScript()
    script.filename = str(ROOT / "scripts" / "iclight.py")  # as A1111's script loader sets it
    script.args_from, script.args_to = 0, len(PARAMS)
    return ScriptRunner([script])


def embeddings(batch, seed=7):
    """Prompt and negative prompt embeddings: one prompt for the whole batch, as from A1111's UI."""
    g = torch.Generator().manual_seed(seed)
    cond, uncond = torch.randn(1, 77, 768, generator=g), torch.randn(1, 77, 768, generator=g)
    return cond.expand(batch, -1, -1), uncond.expand(batch, -1, -1)


def txt2img(args, batch_size=1, **kwargs):
    from modules.processing import StableDiffusionProcessingTxt2Img

    cond, uncond = embeddings(batch_size)
    return StableDiffusionProcessingTxt2Img(cond=cond, uncond=uncond, batch_size=batch_size, scripts=script_runner(),
                                            script_args=tuple(args), **kwargs)


def img2img(args, init_images, batch_size=1, **kwargs):
    from modules.processing import StableDiffusionProcessingImg2Img

    cond, uncond = embeddings(batch_size)
    return StableDiffusionProcessingImg2Img(cond=cond, uncond=uncond, batch_size=batch_size, scripts=script_runner(),
                                            script_args=tuple(args), init_images=init_images, **kwargs)


def subject(size=64, seed=0, alpha=False):
    """A synthetic subject: a bright disc on a dark square, optionally cut out by an alpha disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    rgb = np.where(disc[..., None], rng.integers(150, 255, 3), rng.integers(0, 80, 3)).astype(np.uint8)
    rgb = (rgb + rng.integers(0, 20, rgb.shape)).astype(np.uint8)
    if alpha:
        return np.dstack([rgb, (disc * 255).astype(np.uint8)])
    return rgb


def pil(image):
    return Image.fromarray(image)
