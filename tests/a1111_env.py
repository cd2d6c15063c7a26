"""An A1111-like process around a real tiny ldm LatentDiffusion, through the `modules` stand-ins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from safetensors.torch import save_file

from iclight_a1111.unet.checkpoint_family import SD1_KEY, SD2_KEY, SDXL_KEY
from tiny_models import random_offsets, tiny_latent_diffusion, write_offsets

FAMILY_KEYS = {"sd1": SD1_KEY, "sd2": SD2_KEY, "sdxl": SDXL_KEY}
FAMILY_KEY_WIDTHS = {"sdxl": 1280}


@dataclass
class A1111Env:
    sd_model: torch.nn.Module
    model_dir: Path
    tmp_path: Path

    @property
    def unet(self) -> torch.nn.Module:
        return self.sd_model.model.diffusion_model

    def model_file(self, variant: str):
        from iclight_a1111.webui import host as webui_host

        return webui_host.A1111Host().find_model(f"iclight_sd15_{variant}.safetensors")

    def activate(self, variant: str):
        """What a generation does before sampling: the IC-Light UNet for `variant`, made current."""
        from modules import sd_unet

        from iclight_a1111.webui import host as webui_host

        webui_host.A1111Host().activate(self.model_file(variant))
        return sd_unet.current_unet

    def deactivate(self) -> None:
        from iclight_a1111.webui import host as webui_host

        webui_host.A1111Host().deactivate()

    def add_checkpoint(self, name: str, seed: int, config: str = "sd1", on_load=None):
        """Another checkpoint A1111 can load: the tiny SD 1.x architecture with other random weights, in
        the role of the family `config` names: the stand-in flags the loaded model `is_sd1`, `is_sd2` or
        `is_sdxl`, and a real safetensors file holds that family's text-encoder key (what tells the family
        of a checkpoint not loaded). `on_load(model)` runs on each model built from it."""

        def content():
            model = tiny_latent_diffusion(seed)
            if on_load is not None:
                on_load(model)
            return model

        info = checkpoint_info(self.tmp_path, name, content, config)
        save_file({FAMILY_KEYS[config]: torch.zeros(FAMILY_KEY_WIDTHS.get(config, 8))}, info.filename)
        return info


def make_env(tmp_path: Path, seed: int = 0) -> A1111Env:
    from modules import paths, processing, sd_hijack, sd_models, sd_unet, shared  # noqa: F401 (sd_hijack patches UNetModel.forward)

    info = checkpoint_info(tmp_path, "tiny-sd15", lambda: tiny_latent_diffusion(seed))
    shared.opts.sd_model_checkpoint = info.title
    sd_model = sd_models.load_model(info)
    paths.models_path = str(tmp_path / "models")
    processing.default_outpath_samples = str(tmp_path / "outputs")
    model_dir = tmp_path / "models" / "ic-light"
    model_dir.mkdir(parents=True)
    unet = sd_model.model.diffusion_model
    write_offsets(model_dir / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, seed=seed + 1), "diffusers")
    write_offsets(model_dir / "iclight_sd15_fbc.safetensors", random_offsets(unet, 12, seed=seed + 2), "diffusers")
    sd_unet.list_unets()
    return A1111Env(sd_model, model_dir, tmp_path)


def checkpoint_info(tmp_path: Path, name: str, content, config: str = "sd1"):
    """A registered checkpoint of the stand-in `sd_models`: `content()` builds it with its weights."""
    from modules import sd_models

    return sd_models.CheckpointInfo(str(tmp_path / f"{name}.safetensors"), f"{name}.safetensors [0123456789]", name, name,
                                    content=content, config=config).register()


def reset_env() -> None:
    from modules import hashes, processing, sd_models, sd_unet, shared

    from iclight_a1111.webui import merged_weights
    from iclight_a1111.webui import host as webui_host

    webui_host.A1111Host().deactivate()
    hashes.caches.clear()
    merged_weights.MERGED_WEIGHTS.clear()
    shared.sd_model = None
    processing.default_outpath_samples = None
    sd_unet.current_unet_option = None
    sd_unet.current_unet = None
    sd_models.checkpoints_list.clear()
    sd_models.checkpoint_aliases.clear()
    sd_models.model_data.loaded_sd_models.clear()
    shared.opts.sd_model_checkpoint = None
    shared.opts.sd_checkpoints_limit = 1
    shared.state.interrupted = False
