"""The webui IC-Light runs in, told once, when the scripts load: A1111, or Forge. Each has its host."""
from __future__ import annotations

import importlib.util

from modules import sd_models

from ..generation.job import Host
from . import progress_bar

HOSTS: list[Host] = []


def on_forge() -> bool:
    """Forge loads checkpoints through `sd_models.forge_model_reload` and runs UNets through its own patcher
    (`backend.patcher.unet`); A1111 has neither. (Older Forge and reForge, with `ldm_patched`, are neither.)"""
    if not hasattr(sd_models, "forge_model_reload"):
        return False
    try:
        return importlib.util.find_spec("backend.patcher.unet") is not None
    except ModuleNotFoundError:
        return False


def host() -> Host:
    """The host of this webui, made at the first call."""
    if not HOSTS:
        progress_bar.install()
        if on_forge():
            from .forge_host import ForgeHost
            HOSTS.append(ForgeHost())
        else:
            from .host import A1111Host
            HOSTS.append(A1111Host())
    return HOSTS[0]
