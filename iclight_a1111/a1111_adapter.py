"""The one module of the library that imports A1111's `modules.*`.

It turns the library's pieces into A1111 objects: an `sd_unet.SdUnetOption` per IC-Light file, an
`sd_unet.SdUnet` running the current checkpoint with IC-Light weights, VAE encoding with the
checkpoint's VAE, the CFGDenoiser routing of a sampling pass, model files and their downloads.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm
from modules import call_queue, devices, hashes, modelloader, paths, sd_hijack, sd_models, sd_unet, shared
from modules.images import save_image as save_webui_image

from .background_removal import RmbgNet, load_rmbg, predict_alpha
from .checkpoint_family import SD1, family_from_file, family_of_model, same_latent_space
from .concat_unet import CheckpointUnet, IcLightUnet, Placement
from .errors import IcLightError
from .lora_bookkeeping import networks_on
from .merged_cache import MergedWeightsCache
from .model_files import (
    MODEL_FOLDER_NAME, OFFICIAL_FILES, RELEASE_URL, RMBG_FILE_NAME, RMBG_FOLDER_NAME, RMBG_URL, ModelFile,
    download_hint, find_model_files, find_rmbg_file, inspect_model_file, select_model,
    verify_download,
)
from .offset_files import file_source
from .progress import task, tracked, use
from .row_alignment import route_concat_latents
from .vae_encoding import encode_latents

UNET_LABEL_PREFIX = "IC-Light: "
CACHE_OPTION = "iclight_cache_merged_weights"
PLACEMENT_OPTION = "iclight_checkpoint_placement"
PLACEMENT_CHOICES = {"Automatic": None, "Keep on GPU": "keep", "Park in RAM": "park"}
VRAM_HEADROOM = 2 * 2**30  # left free for sampling at about 512x640 after a second UNet
MERGED_WEIGHTS = MergedWeightsCache()
BACKGROUND_REMOVER: dict[tuple[str, int], RmbgNet] = {}  # the loaded net, kept in RAM between uses


class WebuiProgress:
    """IC-Light's long work in A1111's progress bar (`shared.state`: its text and the steps of the
    current job, which the sampler resets when it starts) and in the console (tqdm)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def begin(self, text: str, total: int) -> None:
        self.bar = tqdm(total=total, desc=text, leave=False)
        shared.state.textinfo = text
        shared.state.sampling_steps, shared.state.sampling_step = total, 0

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)
        shared.state.sampling_step += steps

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None
        shared.state.textinfo = None
        shared.state.sampling_step = 0


use(WebuiProgress())


class IcLightSdUnet(IcLightUnet, sd_unet.SdUnet):
    """`IcLightUnet` as an A1111 SdUnet: current in `sd_unet` while a generation uses IC-Light."""

    def append_concat(self, conv: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        refuse_lora_on_first_conv(conv)
        return super().append_concat(conv, args)

    def deactivate(self, keep_merged_weights: bool = False) -> None:
        """Off, the checkpoint's own weights back. A1111 calls this (from `apply_unet("None")`) only
        before it loads other weights into the model (a refiner, a checkpoint switch): the merged copy
        is released at once then, so it never sits in memory beside the weights being loaded."""
        super().deactivate()
        if not keep_merged_weights:
            release_merged_weights()

    def is_active_for(self, model: ModelFile, unet: torch.nn.Module) -> bool:
        """Whether this is `model`'s IC-Light, active on `unet`."""
        return self.backup is not None and self.option.model == model and self.checkpoint.module is unet

    def forward(self, x: torch.Tensor, timesteps: Any = None, context: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        in_use = model_in_use()
        if in_use is not self.checkpoint.module:
            # A1111 switched to an already-loaded checkpoint (refiner, hires checkpoint, sd_checkpoints_limit
            # > 1) without `apply_unet("None")`: IC-Light goes off its model and the model in use runs as it is.
            A1111Host().deactivate()
            release_merged_weights()
            return in_use(x, timesteps, context, *args, **kwargs)
        return super().forward(x, timesteps, context, *args, **kwargs)


def loaded_lora_networks() -> list[Any]:
    """The networks the built-in Lora extension applies to this batch; A1111 imports the extension's
    code as the top-level module `networks`. Empty when that extension is off."""
    return list(getattr(sys.modules.get("networks"), "loaded_networks", None) or ())


def refuse_lora_on_first_conv(conv: torch.nn.Module) -> None:
    """Lora cannot add a layer made for the 4-channel first conv to the widened one: it only logs
    that at debug level and runs without it. Refuse instead, naming the Lora and the fix."""
    names = networks_on(conv, loaded_lora_networks())
    if names:
        prompts = ", ".join(f"<lora:{name}:...>" for name in names)
        raise IcLightError(
            f"Lora {', '.join(repr(n) for n in names)} changes the UNet's first conv (input_blocks.0.0, conv_in), "
            f"which IC-Light widens to {conv.in_channels} input channels; the Lora extension cannot apply it there and would "
            f"silently leave that layer out. Remove {prompts} from the prompt, or use a version of the Lora without "
            "that layer, to use it with IC-Light."
        )


class IcLightUnetOption(sd_unet.SdUnetOption):
    """One IC-Light file as an SdUnet option. Not listed in Settings > SD Unet: IC-Light is switched
    on per generation by its panel, without `sd_unet.apply_unet`'s device round trip."""

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.label = unet_label(model)
        self.model_name = None

    def create_unet(self) -> IcLightSdUnet:
        unet = model_in_use()
        checkpoint = CheckpointUnet(unet, sd_hijack.ldm_original_forward)
        source = file_source(self.model.path, file_hash(self.model))
        cache = MERGED_WEIGHTS if cache_enabled() else None
        return IcLightSdUnet(checkpoint, source, placement=placement(unet), cache=cache)


def placement(unet: torch.nn.Module) -> Placement:
    """Where the checkpoint's UNet waits while IC-Light runs: RAM under --medvram/--lowvram (their
    hooks keep VRAM low), else the setting; Automatic keeps it on the GPU when a second UNet fits."""
    setting = shared.opts.data.get(PLACEMENT_OPTION, "Automatic")
    chosen = PLACEMENT_CHOICES.get(setting)
    if getattr(shared.sd_model, "lowvram", False):
        if chosen == "keep":
            print(f"IC-Light: '{setting}' is not followed under --medvram/--lowvram: the checkpoint UNet is "
                  "parked in RAM while IC-Light runs.")
        return "park"
    return chosen or ("keep" if second_unet_fits(unet) else "park")


def model_in_use() -> torch.nn.Module | None:
    """The UNet of the checkpoint A1111 uses now (None when none is loaded, or the model has no
    `model.diffusion_model`): everything of IC-Light is keyed to this object."""
    return getattr(getattr(shared.sd_model, "model", None), "diffusion_model", None)


def second_unet_fits(unet: torch.nn.Module) -> bool:
    device = torch.device(devices.device)
    if device.type != "cuda":
        return True  # CPU, MPS: one memory for both
    if MERGED_WEIGHTS.key is not None and MERGED_WEIGHTS.key.placement == "keep":
        return True  # the merged weights already occupy their VRAM
    free, _ = torch.cuda.mem_get_info(device)
    return free >= sum(p.numel() * p.element_size() for p in unet.parameters()) + VRAM_HEADROOM


def file_hash(model: ModelFile) -> str | None:
    """The file's sha256, from A1111's hash cache; None under --no-hashing.

    That cache is keyed by title and trusts any mtime not newer than the one it recorded, so the
    title carries the file's size and mtime: a file replaced by an older one is hashed anew."""
    stat = model.path.stat()
    return hashes.sha256(str(model.path), f"iclight/{model.path.stem}/{stat.st_size}/{stat.st_mtime_ns}") or None


def cache_enabled() -> bool:
    return bool(shared.opts.data.get(CACHE_OPTION, True))


def on_cache_setting_changed() -> None:
    if not cache_enabled():
        release_merged_weights()


def release_merged_weights(*_: Any) -> None:
    """Free the cached merged weights (the setting was turned off, or another checkpoint was loaded)."""
    MERGED_WEIGHTS.clear()
    devices.torch_gc()


def other_checkpoint(name: str | None) -> Any:
    """The `CheckpointInfo` of a hires checkpoint or refiner setting when it names another checkpoint
    than the one in use; None for none, the same one, or one A1111 does not know (`p.init` refuses it)."""
    if name in (None, "", "None", "none", "Use same checkpoint"):
        return None
    info = sd_models.get_closet_checkpoint_match(name)
    if info is None or info.filename == shared.sd_model.sd_checkpoint_info.filename:
        return None
    return info


def checkpoint_family(info: Any) -> str | None:
    """The family of a checkpoint: from the loaded model when A1111 holds it, else from its file's header."""
    for model in sd_models.model_data.loaded_sd_models:
        if model.sd_checkpoint_info.filename == info.filename:
            return family_of_model(model)
    return family_from_file(info.filename)


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
        with task(f"IC-Light: downloading {name}"):
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
            with task(f"IC-Light: downloading the background remover ({RMBG_FILE_NAME})"):
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
        return (file_hash(model) or "")[:10]

    def model_files(self) -> list[ModelFile]:
        return model_files()

    def exclusive(self) -> Any:
        """A1111's queue lock: held by every generation, so work holding it never shares the GPU with one."""
        return call_queue.queue_lock

    def check_generation(self, p: Any) -> None:
        """Refuse what would replace the UNet IC-Light runs on, and checkpoint switches that would hand
        IC-Light's latents to a model of another latent space."""
        option = sd_unet.get_unet_option()
        if option is not None:
            raise IcLightError(
                f"Settings > SD Unet uses '{option.label}', which replaces the checkpoint's UNet; IC-Light needs "
                "the checkpoint's own UNet. Set SD Unet to None to use IC-Light."
            )
        hires = self.hires_checkpoint(p)
        upscaler = getattr(p, "hr_upscaler", None) or shared.latent_upscale_default_mode
        if hires is not None and upscaler in shared.latent_upscale_modes and not same_latent_space(SD1, hires[1]):
            raise IcLightError(
                f"Hires upscaler '{upscaler}' hands the relit SD 1.5 latents to the hires checkpoint {hires[0]}, an "
                f"{hires[1]} checkpoint whose latents mean something else. Choose a pixel upscaler as Upscaler "
                "(R-ESRGAN 4x+, or Lanczos): A1111 then decodes the first pass and encodes it for the hires checkpoint."
            )
        refiner = other_checkpoint(getattr(p, "refiner_checkpoint", None))
        if refiner is not None and not same_latent_space(SD1, checkpoint_family(refiner)):
            raise IcLightError(
                f"The refiner {refiner.short_title or refiner.title} is an {checkpoint_family(refiner)} checkpoint: "
                "A1111 hands it the latents of the first steps, which IC-Light makes on SD 1.5, and those mean "
                "something else to it. Choose an SD 1.x or SD 2.x refiner, or set Refiner off and use it as Hires "
                "checkpoint with a pixel upscaler."
            )

    def hires_checkpoint(self, p: Any) -> tuple[str, str | None] | None:
        """The hires pass's checkpoint, when hires. fix runs on another checkpoint than the one in use:
        (its title, its family or None when unknown)."""
        if not getattr(p, "enable_hr", False):
            return None
        info = other_checkpoint(getattr(p, "hr_checkpoint_name", None))
        return None if info is None else (info.short_title or info.title, checkpoint_family(info))

    def release_merged_weights(self) -> None:
        release_merged_weights()

    def activate(self, model: ModelFile) -> None:
        """Make the IC-Light UNet of `model` on the checkpoint in use the current SdUnet, without A1111's
        `apply_unet` device round trip; nothing to do when it already is."""
        current = sd_unet.current_unet
        if isinstance(current, IcLightSdUnet) and current.is_active_for(model, model_in_use()):
            return
        if current is not None and not isinstance(current, IcLightUnet):
            label = getattr(getattr(current, "option", None), "label", type(current).__name__)
            raise IcLightError(
                f"Another UNet ('{label}', Settings > SD Unet) is active; IC-Light needs the checkpoint's own UNet. "
                "Set SD Unet to None to use IC-Light."
            )
        self.deactivate()
        option = IcLightUnetOption(model)
        unet = option.create_unet()
        unet.option = option
        unet.activate()
        # As `apply_unet` would: A1111 itself then deactivates it before it reloads the checkpoint.
        sd_unet.current_unet_option, sd_unet.current_unet = option, unet

    def forget_other_models(self) -> None:
        """Drop IC-Light's state for any model but the one in use: A1111 may have switched checkpoints
        through a path that tells no one (an already-loaded checkpoint, `sd_checkpoints_limit` > 1)."""
        current = sd_unet.current_unet
        if isinstance(current, IcLightUnet) and current.checkpoint.module is not model_in_use():
            self.deactivate()
        if MERGED_WEIGHTS.weights is not None and not MERGED_WEIGHTS.held_for(model_in_use()):
            release_merged_weights()

    def deactivate(self) -> None:
        """Off at the end of a generation (or a pass); the merged copy stays cached for the next one."""
        unet = sd_unet.current_unet
        if isinstance(unet, IcLightSdUnet):
            try:
                unet.deactivate(keep_merged_weights=True)
            finally:
                sd_unet.current_unet_option, sd_unet.current_unet = None, None

    def save_image(self, p: Any, image: Image.Image, index: int, infotext: str, suffix: str) -> None:
        """Save an image IC-Light adds after sampling as A1111 saves the results (folder, name
        pattern, infotext, the save settings)."""
        if not p.save_samples():
            return
        seeds, prompts = getattr(p, "all_seeds", None) or [p.seed], getattr(p, "all_prompts", None) or [p.prompt]
        save_webui_image(image, p.outpath_samples, "", seeds[index % len(seeds)], prompts[index % len(prompts)],
                          shared.opts.samples_format, info=infotext, p=p, suffix=suffix)

    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return encode_images(images)

    def route(self, sampler: Any, latents: torch.Tensor) -> None:
        route_to_active_unet(sampler, latents)

    def predict_alphas(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Alphas from RMBG-1.4 on the generation device; the net goes back to RAM afterwards."""
        net = background_remover()
        net.to(devices.device)
        try:
            return [predict_alpha(net, image, devices.device) for image in tracked(images, "IC-Light: removing the background")]
        finally:
            net.to(devices.cpu)
            devices.torch_gc()

    def image_format(self) -> str:
        return shared.opts.samples_format

    def picture_background(self) -> str:
        """The colour A1111 flattens transparent img2img pictures on."""
        return shared.opts.img2img_background_color
