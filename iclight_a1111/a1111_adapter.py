"""The one module of the library that imports A1111's `modules.*`.

It turns the library's pieces into A1111 objects: an `sd_unet.SdUnetOption` per IC-Light file, an
`sd_unet.SdUnet` running the current checkpoint with IC-Light weights, VAE encoding with the
checkpoint's VAE, the CFGDenoiser routing of a sampling pass, model files and their downloads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from modules import devices, hashes, modelloader, paths, sd_hijack, sd_unet, shared

from .background_removal import RmbgNet, load_rmbg, predict_alpha
from .concat_unet import CheckpointUnet, IcLightUnet
from .errors import IcLightError
from .merged_cache import MergedWeightsCache
from .model_files import (
    MODEL_FOLDER_NAME, OFFICIAL_FILES, RELEASE_URL, RMBG_FILE_NAME, RMBG_FOLDER_NAME, RMBG_URL, ModelFile,
    download_hint, find_model_files, find_rmbg_file, inspect_model_file, select_model,
    verify_download,
)
from .offset_files import file_source
from .row_alignment import route_concat_latents
from .vae_encoding import encode_latents

UNET_LABEL_PREFIX = "IC-Light: "
CACHE_OPTION = "iclight_cache_merged_weights"
MERGED_WEIGHTS = MergedWeightsCache()
BACKGROUND_REMOVER: dict[tuple[str, int], RmbgNet] = {}  # the loaded net, kept in RAM between uses


class IcLightSdUnet(IcLightUnet, sd_unet.SdUnet):
    """`IcLightUnet` as the SdUnet A1111's `sd_unet.apply_unet` activates."""


class IcLightUnetOption(sd_unet.SdUnetOption):
    """One IC-Light file, listed in A1111's SD Unet options."""

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.label = unet_label(model)
        # No checkpoint name: "Automatic" must never pick IC-Light for a plain generation.
        self.model_name = None

    def create_unet(self) -> IcLightSdUnet:
        unet = shared.sd_model.model.diffusion_model
        checkpoint = CheckpointUnet(unet, sd_hijack.ldm_original_forward)
        source = file_source(self.model.path, identity=file_hash(self.model))
        cache = MERGED_WEIGHTS if cache_enabled() else None
        return IcLightSdUnet(checkpoint, source, device=weights_device(), cache=cache)


def weights_device() -> torch.device:
    """Where merged weights are made: the generation device, or RAM under --lowvram/--medvram, whose
    hooks move each UNet module to the GPU only while it runs (and move the merged weights with it)."""
    return devices.cpu if getattr(shared.sd_model, "lowvram", False) else devices.device


def file_hash(model: ModelFile) -> str:
    """The file's sha256, from A1111's hash cache (computed once per file and modification time)."""
    return hashes.sha256(str(model.path), f"iclight/{model.path.stem}") or ""


def cache_enabled() -> bool:
    return bool(shared.opts.data.get(CACHE_OPTION, True))


def on_cache_setting_changed() -> None:
    if not cache_enabled():
        MERGED_WEIGHTS.clear()
        devices.torch_gc()


def model_folders() -> list[Path]:
    """`models/ic-light` and the folder given by `--iclight-dir`, if any."""
    folders = [Path(paths.models_path) / MODEL_FOLDER_NAME]
    extra = getattr(shared.cmd_opts, "iclight_dir", None)
    if extra:
        folders.append(Path(extra))
    return folders


def unet_label(model: ModelFile) -> str:
    return UNET_LABEL_PREFIX + model.path.stem


def model_files() -> list[ModelFile]:
    return find_model_files(model_folders())


def add_unet_options(options: list) -> None:
    """`script_callbacks.on_list_unets` callback: one option per IC-Light file found."""
    options.extend(IcLightUnetOption(model) for model in model_files())


def encode_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """IC-Light latents of uint8 HxWx3 images through the current checkpoint's VAE."""
    sd_model = shared.sd_model
    vae_dtype = next(sd_model.first_stage_model.parameters()).dtype
    return encode_latents(images, sd_model.encode_first_stage, sd_model.scale_factor, devices.device, vae_dtype)


def route_to_active_unet(sampler: object, latents: torch.Tensor) -> None:
    """Feed `latents` to the active IC-Light UNet through this sampling pass's CFGDenoiser."""
    unet = sd_unet.current_unet
    if not isinstance(unet, IcLightUnet):
        raise IcLightError("IC-Light latents were given but the IC-Light UNet is not active.")
    route_concat_latents(sampler.model_wrap_cfg, unet, latents)


def download_official(name: str) -> ModelFile:
    """Fetch an official IC-Light file with A1111's downloader (progress in the console), verified."""
    folder = model_folders()[0]
    try:
        path = modelloader.load_file_from_url(RELEASE_URL + name, model_dir=str(folder), file_name=name)
    except Exception as e:
        raise IcLightError(f"Could not download {name} ({e}). {download_hint(name, folder)}") from e
    return verify_download(Path(path), OFFICIAL_FILES[name])


def background_remover() -> RmbgNet:
    """RMBG-1.4 from models/rmbg (or the IC-Light folders); downloaded with A1111's downloader when missing."""
    rmbg_folder = Path(paths.models_path) / RMBG_FOLDER_NAME
    path = find_rmbg_file([rmbg_folder, *model_folders()])
    if path is None:
        try:
            path = Path(modelloader.load_file_from_url(RMBG_URL, model_dir=str(rmbg_folder), file_name=RMBG_FILE_NAME))
        except Exception as e:
            raise IcLightError(
                f"Background removal needs the RMBG-1.4 model and it could not be downloaded ({e}). "
                f"Download {RMBG_FILE_NAME} from {RMBG_URL} and put it in {rmbg_folder}."
            ) from e
    key = (str(path), path.stat().st_mtime_ns)
    if key not in BACKGROUND_REMOVER:
        BACKGROUND_REMOVER.clear()
        BACKGROUND_REMOVER[key] = load_rmbg(path)
    return BACKGROUND_REMOVER[key]


class A1111Host:
    """`generation.Host` on A1111: model files, sd_unet activation, the VAE, the sampler."""

    def find_model(self, name: str) -> ModelFile:
        files = model_files()
        model = select_model(files, name)
        if model is not None:
            return model
        wanted = name.split(" [")[0].strip() or "iclight_sd15_fc.safetensors"
        if not files and wanted in OFFICIAL_FILES:
            return download_official(wanted)
        for folder in model_folders():
            if (folder / wanted).is_file():
                inspect_model_file(folder / wanted)  # raises with the reason it is not listed
        folder = model_folders()[0]
        if not files:
            raise IcLightError(f"IC-Light is enabled but no IC-Light model file was found. {download_hint(wanted, folder)}")
        listed = ", ".join(f.name for f in files)
        raise IcLightError(f"IC-Light model '{name}' was not found (available: {listed}). Put it in {folder}.")

    def short_hash(self, model: ModelFile) -> str:
        return file_hash(model)[:10]

    def activate(self, model: ModelFile) -> None:
        label = unet_label(model)
        if label not in [o.label for o in sd_unet.unet_options]:
            sd_unet.list_unets()
        sd_unet.apply_unet(label)
        active = sd_unet.current_unet
        if not isinstance(active, IcLightUnet) or active.source.name != model.name:
            raise IcLightError(f"The IC-Light UNet for '{model.name}' could not be activated.")

    def deactivate(self) -> None:
        sd_unet.apply_unet("None")

    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return encode_images(images)

    def route(self, sampler: Any, latents: torch.Tensor) -> None:
        route_to_active_unet(sampler, latents)

    def predict_alphas(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Alphas from RMBG-1.4 on the generation device; the net goes back to RAM afterwards."""
        net = background_remover()
        net.to(devices.device)
        try:
            return [predict_alpha(net, image, devices.device) for image in images]
        finally:
            net.to(devices.cpu)
            devices.torch_gc()
