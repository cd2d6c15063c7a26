"""What both webuis (A1111 and Forge) give a generation alike: model files and their hashes, the checks
of other extensions and checkpoints, saving, the background remover, A1111's own picture encode skipped.
`host.A1111Host` and `forge_host.ForgeHost` add how each runs the UNet."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image
from modules import call_queue, devices, shared
from modules.images import save_image as save_webui_image

from ..errors import IcLightError, ModelFileFault, shown
from ..images.background_removal import predict_alpha
from ..progress import tracked
from ..unet.checkpoint_family import SD1, same_latent_space
from ..unet.model_files import (
    OFFICIAL_FILES, ModelFile, download_hint, inspect_model_file, is_plain_file_name, select_model,
)
from .adetailer import face_pass_refusal
from .checkpoints import checkpoint_family, other_checkpoint
from .model_folders import background_remover, download_official, file_hash, model_files, model_folders


class WebuiHost:
    """The parts of `generation.Host` the webuis share."""

    def find_model(self, name: str) -> ModelFile:
        files = model_files()
        model = select_model(files, name)
        if model is not None:
            return model
        wanted = name.split(" [")[0].strip() or "iclight_sd15_fc.safetensors"
        folder = model_folders()[0]
        if not is_plain_file_name(wanted):
            raise IcLightError(f"IC-Light 'model' must name a file in {folder} (no folders), got {shown(name)}.")
        if not files and wanted in OFFICIAL_FILES:
            return download_official(wanted)
        for candidate in model_folders():
            if (candidate / wanted).is_file():
                inspect_model_file(candidate / wanted)  # raises with the reason it is not listed
        if not files:
            raise ModelFileFault(f"IC-Light is enabled but no IC-Light model file was found. {download_hint(wanted, folder)}")
        listed = ", ".join(f.name for f in files)
        raise IcLightError(f"IC-Light model {shown(name)} was not found (available: {listed}). Put it in {folder}.")

    def short_hash(self, model: ModelFile) -> str:
        return (file_hash(model) or "")[:10]

    def model_files(self) -> list[ModelFile]:
        return model_files()

    def exclusive(self) -> Any:
        """A1111's queue lock: held by every generation, so work holding it never shares the GPU with one."""
        return call_queue.queue_lock

    def check_generation(self, p: Any) -> None:
        """Refuse checkpoint switches that would hand IC-Light's latents to a model of another latent space,
        and ADetailer running IC-Light in its face pass."""
        refused = face_pass_refusal(p)
        if refused is not None:
            raise IcLightError(refused)
        self.check_unet_in_use(p)
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

    def check_unet_in_use(self, p: Any) -> None:
        """Refuse a UNet IC-Light cannot run on (each webui knows its own)."""

    def hires_checkpoint(self, p: Any) -> tuple[str, str | None] | None:
        """The hires pass's checkpoint, when hires. fix runs on another checkpoint than the one in use:
        (its title, its family or None when unknown)."""
        if not getattr(p, "enable_hr", False):
            return None
        info = other_checkpoint(getattr(p, "hr_checkpoint_name", None))
        return None if info is None else (info.short_title or info.title, checkpoint_family(info))

    def save_image(self, p: Any, image: Image.Image, index: int, infotext: str, suffix: str) -> None:
        """Save an image IC-Light adds after sampling as A1111 saves the results (folder, name
        pattern, infotext, the save settings)."""
        if not p.save_samples():
            return
        seeds, prompts = getattr(p, "all_seeds", None) or [p.seed], getattr(p, "all_prompts", None) or [p.prompt]
        save_webui_image(image, p.outpath_samples, "", seeds[index % len(seeds)], prompts[index % len(prompts)],
                         shared.opts.samples_format, info=infotext, p=p, suffix=suffix)

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

    @contextlib.contextmanager
    def picture_not_encoded(self) -> Iterator[None]:
        """Within the block (an img2img `p.init`), the webui's VAE encode of the picture (`images_tensor_to_samples`,
        modules/processing.py ~1725 in A1111, ~1815 in Forge, through `encode_first_stage`) gives zeros of the
        latent's shape, at once."""
        sd_model = shared.sd_model
        own = sd_model.__dict__.get("encode_first_stage")
        channels = getattr(sd_model, "latent_channels", 4)
        sd_model.encode_first_stage = lambda image: image.new_zeros(image.shape[0], channels, *(s // 8 for s in image.shape[2:]))
        try:
            yield
        finally:
            if own is None:
                del sd_model.encode_first_stage
            else:
                sd_model.encode_first_stage = own
