"""An A1111-like process around a real tiny ldm LatentDiffusion, through the `modules` stand-ins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tiny_models import random_offsets, tiny_latent_diffusion, write_offsets


@dataclass
class A1111Env:
    sd_model: torch.nn.Module
    model_dir: Path

    @property
    def unet(self) -> torch.nn.Module:
        return self.sd_model.model.diffusion_model

    def model_file(self, variant: str):
        from iclight_a1111 import a1111_adapter

        return a1111_adapter.A1111Host().find_model(f"iclight_sd15_{variant}.safetensors")

    def activate(self, variant: str):
        """What a generation does before sampling: the IC-Light UNet for `variant`, made current."""
        from modules import sd_unet

        from iclight_a1111 import a1111_adapter

        a1111_adapter.A1111Host().activate(self.model_file(variant))
        return sd_unet.current_unet

    def deactivate(self) -> None:
        from iclight_a1111 import a1111_adapter

        a1111_adapter.A1111Host().deactivate()


def make_env(tmp_path: Path, seed: int = 0) -> A1111Env:
    from modules import paths, processing, sd_hijack, sd_models, sd_unet, shared  # noqa: F401 (sd_hijack patches UNetModel.forward)

    sd_model = tiny_latent_diffusion(seed)
    sd_model.lowvram = False
    sd_model.sd_checkpoint_info = sd_models.CheckpointInfo(
        str(tmp_path / "tiny-sd15.safetensors"), "tiny-sd15.safetensors [0123456789]", "tiny-sd15", "tiny-sd15").register()
    shared.sd_model = sd_model
    paths.models_path = str(tmp_path / "models")
    processing.default_outpath_samples = str(tmp_path / "outputs")
    model_dir = tmp_path / "models" / "ic-light"
    model_dir.mkdir(parents=True)
    unet = sd_model.model.diffusion_model
    write_offsets(model_dir / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, seed=seed + 1), "diffusers")
    write_offsets(model_dir / "iclight_sd15_fbc.safetensors", random_offsets(unet, 12, seed=seed + 2), "diffusers")
    sd_unet.list_unets()
    return A1111Env(sd_model, model_dir)


def reset_env() -> None:
    from modules import hashes, processing, sd_models, sd_unet, shared

    from iclight_a1111 import a1111_adapter

    a1111_adapter.A1111Host().deactivate()
    hashes.caches.clear()
    a1111_adapter.MERGED_WEIGHTS.clear()
    shared.sd_model = None
    processing.default_outpath_samples = None
    sd_unet.current_unet_option = None
    sd_unet.current_unet = None
    sd_models.checkpoints_list.clear()
