"""An A1111-like process around a real tiny ldm LatentDiffusion, through the `modules` stand-ins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from tiny_models import random_offsets, tiny_latent_diffusion, write_offsets


@dataclass
class A1111Env:
    sd_model: torch.nn.Module
    model_dir: Path
    labels: dict  # variant -> SD Unet label

    @property
    def unet(self) -> torch.nn.Module:
        return self.sd_model.model.diffusion_model


def make_env(tmp_path: Path, seed: int = 0) -> A1111Env:
    from modules import paths, script_callbacks, sd_hijack, sd_unet, shared  # noqa: F401 (sd_hijack patches UNetModel.forward)

    from iclight_a1111 import a1111_adapter

    sd_model = tiny_latent_diffusion(seed)
    sd_model.lowvram = False
    sd_model.sd_checkpoint_info = SimpleNamespace(model_name="tiny-sd15")
    shared.sd_model = sd_model
    paths.models_path = str(tmp_path / "models")
    model_dir = tmp_path / "models" / "ic-light"
    model_dir.mkdir(parents=True)
    unet = sd_model.model.diffusion_model
    write_offsets(model_dir / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, seed=seed + 1), "diffusers")
    write_offsets(model_dir / "iclight_sd15_fbc.safetensors", random_offsets(unet, 12, seed=seed + 2), "diffusers")

    script_callbacks.callbacks_list_unets.clear()
    script_callbacks.on_list_unets(a1111_adapter.add_unet_options)
    sd_unet.list_unets()
    return A1111Env(sd_model, model_dir, {"fc": "IC-Light: iclight_sd15_fc", "fbc": "IC-Light: iclight_sd15_fbc"})


def reset_env() -> None:
    from modules import sd_unet, shared

    if shared.sd_model is not None:
        sd_unet.apply_unet("None")
    shared.sd_model = None
    sd_unet.current_unet_option = None
    sd_unet.current_unet = None
