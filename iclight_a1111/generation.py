"""One IC-Light generation, from the script's arguments to the latents each sampling pass gets.

A1111 swallows exceptions raised in script hooks and goes on generating without the extension's
effect. So the hooks never raise: a refusal found in a hook is raised from `p.init` or from the
sampler instead, steps whose errors A1111 lets reach the user (an error in the UI, an error answer
from the API).
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from . import hires_pass
from .background_fill import background_without_subject
from .composite import flatten_on
from .detail import reinforce_foreground
from .errors import IcLightError
from .light_maps import DIAGONALS, DIRECTIONS, fbc_background, fc_light_map, parse_color
from .normals import NORMAL_LIGHTS
from .model_files import ModelFile
from .params import PARAMS_BY_KEY, coerce, infotext_entries, is_infotext_key, values_from_args
from .placed_lights import placed_light_map
from .resize_modes import REFERENCE, Layout
from .vae_encoding import composite_on_grey

OVERRIDES_ATTR = "iclight_overrides"  # values set by X/Y/Z plot axes on `p`
JOB_ATTR = "iclight_job"


class Host(Protocol):
    """What a generation needs from A1111 (implemented by `a1111_adapter.A1111Host`)."""

    def find_model(self, name: str) -> ModelFile: ...
    def short_hash(self, model: ModelFile) -> str: ...
    def check_generation(self, p: Any) -> None: ...
    def activate(self, model: ModelFile) -> None: ...
    def deactivate(self) -> None: ...
    def forget_other_models(self) -> None: ...
    def release_merged_weights(self) -> None: ...
    def hires_checkpoint(self, p: Any) -> tuple[str, str | None] | None: ...
    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor: ...
    def route(self, sampler: Any, latents: torch.Tensor) -> None: ...
    def predict_alphas(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def save_image(self, p: Any, image: Image.Image, index: int, infotext: str, suffix: str) -> None: ...
    def image_format(self) -> str: ...
    def picture_background(self) -> str: ...


@dataclass
class ResultRecord:
    """One real result of the generation, as sampled and as IC-Light made it."""

    index: int  # in the generation's order (batch count x batch size): its seed and subject
    raw: Image.Image
    final: Image.Image


@dataclass
class IcLightJob:
    """A generation's IC-Light inputs, and their latents per latent size (first pass, hires pass)."""

    values: dict[str, Any]
    model: ModelFile
    inputs: list[np.ndarray]  # the subjects' RGB as given, one per image or one for all
    alphas: list[np.ndarray | None]  # 0..1: the subject's own alpha, or the background remover's
    layout: Layout = REFERENCE  # how images are fitted to the output: img2img's resize mode, or the reference's crop
    pictures: list[np.ndarray] = field(default_factory=list)  # what the user gave, as A1111 sees it (RGB)
    light_maps: list[np.ndarray] = field(default_factory=list)  # img2img fc: one, or one per subject
    background: np.ndarray | None = None
    latents: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    picture_latent: torch.Tensor | None = None  # img2img with a mask: A1111's latent of the user's picture
    hires_checkpoint: tuple[str, str | None] | None = None  # (title, family) of another hires checkpoint
    results: list[ResultRecord] = field(default_factory=list)
    image_format: str = "png"  # A1111's format for saved and returned images

    @property
    def subjects(self) -> list[np.ndarray]:
        """The subjects as the model sees them: composited over grey by their alpha."""
        return [i if a is None else composite_on_grey(i, a) for i, a in zip(self.inputs, self.alphas)]

    def concat_latents(self, height: int, width: int, encode: Callable[[list[np.ndarray]], torch.Tensor]) -> torch.Tensor:
        """Foreground (then background) latents for a pass at this latent size, encoded once."""
        if (height, width) not in self.latents:
            w, h = width * 8, height * 8
            parts = [encode([self.layout.fit(s, w, h) for s in self.subjects])]
            if self.model.variant == "fbc":
                background = encode(self.background_images(w, h))
                parts.append(background.expand(parts[0].shape[0], -1, -1, -1))
            self.latents[(height, width)] = torch.cat(parts, dim=1)
        return self.latents[(height, width)]

    def background_images(self, width: int, height: int) -> list[np.ndarray]:
        """The fbc background condition: one for all subjects, or (from the pictures) one per subject."""
        source = self.values["background_source"]
        if source.startswith("Upload"):
            return [self.layout.fit(self.background, width, height)]
        if source == "Original picture":
            return [background_without_subject(self.layout.fit(self.pictures[i % len(self.pictures)], width, height),
                                               self.layout.fit_alpha(alpha, width, height))
                    for i, alpha in enumerate(self.alphas)]
        return [fbc_background(source, width, height)]


TAKEN_OVER = ("init", "sample", "close")


def start(p: Any, args: Sequence[Any], host: Host) -> None:
    """The `process` hook: check everything, prepare the job and take over `p.sample`.

    Every generation starts with IC-Light off and nothing of it kept for a model not in use: a
    generation that ended without `postprocess` or `p.close` (an X/Y/Z cell that failed) left it on,
    and A1111 may have switched checkpoints since without telling anyone. Should that fail, no
    generation runs on weights IC-Light could not restore."""
    release(p)
    drop_stale_infotext(p)
    try:
        host.deactivate()
        host.forget_other_models()
        if not requested(args, p):
            return
        values = values_from_args(args)
        values.update(getattr(p, OVERRIDES_ATTR, {}))
        if not values["enabled"]:
            return
        job = prepare(p, values, host)
    except Exception as e:
        refuse_generation(p, e)
        return
    setattr(p, JOB_ATTR, job)
    take_over_sampling(p, host, job)


def drop_stale_infotext(p: Any) -> None:
    """Give `p` generation parameters without IC-Light keys, in a new dict: X/Y/Z cells are shallow
    copies of one `p` sharing one dict, so a cell would otherwise carry the previous cell's keys."""
    p.extra_generation_params = {k: v for k, v in p.extra_generation_params.items() if not is_infotext_key(k)}


def prepare_batch(p: Any, args: Sequence[Any]) -> None:
    """The `before_process` hook (A1111 sets prompts and seeds up after it): a normal map needs its
    four relights in one batch, all with one seed. Problems are left for `start` to report."""
    if not requested(args, p):
        return
    try:
        values = {**values_from_args(args), **getattr(p, OVERRIDES_ATTR, {})}
    except IcLightError:
        return
    if values["enabled"] and values["normal_map"] and isinstance(p.seed, int):
        seed = p.seed if p.seed != -1 else random.randrange(4294967294)
        p.batch_size = len(NORMAL_LIGHTS)
        p.seed = [seed + n for n in range(p.n_iter) for _ in NORMAL_LIGHTS]


def requested(args: Sequence[Any], p: Any) -> bool:
    """Whether IC-Light is asked for: anything but an explicit off. A malformed `enabled` ("yes", 1)
    counts as asked for, so that it is refused by name rather than ignored. In the named form a dict
    without `enabled` asks for IC-Light."""
    overrides = getattr(p, OVERRIDES_ATTR, {})
    if "enabled" in overrides:
        return bool(overrides["enabled"])
    if not args:
        return False
    first = args[0]
    if isinstance(first, Mapping):
        first = first.get("enabled", True)
    return not (first is False or (isinstance(first, str) and first.strip().lower() == "false"))


def prepare(p: Any, values: dict[str, Any], host: Host) -> IcLightJob:
    if values["restore_detail"] and values["detail_size"] % 2 == 0:
        raise IcLightError(f"IC-Light detail blur size must be odd, got {values['detail_size']}.")
    host.check_generation(p)
    hires_checkpoint = host.hires_checkpoint(p)
    if getattr(p, "enable_hr", False):
        on = hires_pass.uses_iclight(values["hires_pass"], hires_checkpoint)
        values["hires_pass"] = "On" if on else "Off"  # as run: what a pasted infotext restores
    model = host.find_model(values["model"])
    values["model"] = model.name
    is_img2img = getattr(p, "init_images", None) is not None
    if is_img2img and getattr(p, "image_mask", None) is not None and getattr(p, "inpaint_full_res", False):
        raise IcLightError(
            "IC-Light relights the whole picture, but 'Inpaint area: Only masked' crops it: choose 'Whole picture'."
        )
    images = subject_images(p, values, is_img2img)
    if values["normal_map"]:
        if not is_img2img or model.variant != "fc" or len(images) != 1:
            raise IcLightError("IC-Light 'Normal map' works in img2img with an fc model and one subject.")
        if p.batch_size != len(NORMAL_LIGHTS):
            raise IcLightError(f"IC-Light 'Normal map' needs a batch of {len(NORMAL_LIGHTS)}; the batch is {p.batch_size}.")

    inputs = [np.ascontiguousarray(i[..., :3]) for i in images]
    if values["remove_background"]:
        alphas = host.predict_alphas(inputs)
    else:
        alphas = [own_alpha(i) for i in images]
    if is_img2img:
        # A1111's picture: the init images flattened on its img2img background colour, fitted by its resize mode.
        pictures = [flatten_on(coerce(PARAMS_BY_KEY["foreground"], i), host.picture_background())
                    for i in p.init_images if i is not None]
        layout = Layout(getattr(p, "resize_mode", 0))
    else:
        pictures, layout = inputs, REFERENCE
    job = IcLightJob(values, model, inputs, alphas, layout, pictures, hires_checkpoint=hires_checkpoint,
                     image_format=host.image_format())
    for needs_alpha, what in ((values["output"] != "Generated", f"'Output: {values['output']}'"),
                              (model.variant == "fbc" and values["background_source"] == "Original picture",
                               "'Background: Original picture'")):
        if needs_alpha and any(a is None for a in alphas):
            raise IcLightError(
                f"IC-Light {what} needs to know where the subject is: turn on 'Remove background', "
                "or give the subject as an RGBA image whose alpha marks it."
            )

    if model.variant == "fbc":
        if values["background_source"].startswith("Upload"):
            if values["background"] is None:
                raise IcLightError(
                    "The fbc IC-Light model needs a background: upload a background image, or choose a light "
                    "gradient (Left, Right, Top, Bottom, Ambient) as Background."
                )
            background = flatten(values["background"])
            job.background = np.fliplr(background).copy() if values["background_source"] == "Upload, flipped" else background
    elif is_img2img and (values["light"] != "None" or values["normal_map"]):
        # The light maps replace the initial latent after `p.init` (see `before_sampling`); the init
        # images stay the user's picture, which A1111 uses for masks, overlays and colour correction.
        job.light_maps = light_maps(job, p.width, p.height)

    p.extra_generation_params.update(infotext_entries(values, model.variant, is_img2img, host.short_hash(model)))
    return job


def own_alpha(image: np.ndarray) -> np.ndarray | None:
    """An RGBA subject's alpha (0..1). A fully opaque alpha (what the img2img box sends for an
    ordinary photo) says nothing about where the subject is: None, like RGB."""
    if image.shape[2] != 4 or image[..., 3].min() == 255:
        return None
    return image[..., 3].astype(np.float32) / 255.0


def subject_images(p: Any, values: Mapping[str, Any], is_img2img: bool) -> list[np.ndarray]:
    if values["foreground"] is not None:
        return [values["foreground"]]
    if is_img2img:
        images = [i for i in p.init_images if i is not None]
        if not images:
            raise IcLightError("IC-Light needs a subject: put the picture to relight in the img2img image box.")
        if all(i is images[0] for i in images):
            images = images[:1]  # the Batch tab gives each file as [image] * batch size: one subject
        return [coerce(PARAMS_BY_KEY["foreground"], i) for i in images]
    raise IcLightError("IC-Light needs a foreground: upload the subject to relight in the IC-Light panel.")


def flatten(image: np.ndarray) -> np.ndarray:
    """RGB as is; RGBA composited over grey by its alpha, as the reference does."""
    if image.shape[2] == 4:
        return composite_on_grey(image[..., :3], image[..., 3].astype(np.float32) / 255.0)
    return image


def light_maps(job: IcLightJob, width: int, height: int) -> list[np.ndarray]:
    """The initial images of an img2img fc pass: the light map (the four of a normal map), with the
    subject pasted onto it when reinforced (one map per subject, or the one subject on each map)."""
    directions = NORMAL_LIGHTS if job.values["normal_map"] else (job.values["light"],)
    bases = [light_map_image({**job.values, "light": d}, width, height, job.layout) for d in directions]
    if not job.values["reinforce_foreground"]:
        return bases
    if any(a is None for a in job.alphas):
        raise IcLightError(
            "IC-Light 'Reinforce foreground' needs to know where the subject is: turn on 'Remove background', "
            "or give the subject as an RGBA image whose alpha marks it."
        )
    subjects = [(job.layout.fit(s, width, height), job.layout.fit_alpha(a, width, height))
                 for s, a in zip(job.subjects, job.alphas)]
    if len(bases) == 1:
        return [reinforce_foreground(bases[0], s, a) for s, a in subjects]
    return [reinforce_foreground(b, *subjects[0]) for b in bases]


def light_map_image(values: Mapping[str, Any], width: int, height: int, layout: Layout = REFERENCE) -> np.ndarray:
    light = values["light"]
    if light == "Custom":
        if values["light_map"] is None:
            raise IcLightError("IC-Light light is 'Custom' but no light map was given: upload one, or pick a preset light.")
        return layout.fit(flatten(values["light_map"]), width, height)
    lit, dark = parse_color(values["light_color"]), parse_color(values["shadow_color"])
    if light == "Placed":
        return placed_light_map(values["lights"], width, height, dark, values["falloff"])
    if light in DIRECTIONS or light in DIAGONALS or light == "Ambient":
        return fc_light_map(light, width, height, lit, dark, values["falloff"])
    raise IcLightError(f"Unknown IC-Light light {light!r}.")


def release(p: Any) -> None:
    """Undo a previous generation's takeover: A1111's img2img Batch tab runs every file on the same `p`."""
    for name in TAKEN_OVER:
        method = getattr(p, name)
        if getattr(method, "iclight_takeover", False):
            setattr(p, name, method.__wrapped__)
    if hasattr(p, JOB_ATTR):
        delattr(p, JOB_ATTR)


def refuse_generation(p: Any, error: Exception) -> None:
    """Raise `error` from `p.init`, the first step after the `process` hook that A1111 does not swallow."""

    @functools.wraps(p.init)
    def init(*args: Any, **kwargs: Any) -> Any:
        raise error

    init.iclight_takeover = True
    p.init = init


def take_over_sampling(p: Any, host: Host, job: IcLightJob) -> None:
    """Run `p.sample` with the IC-Light UNet active: activated once per generation, by the first batch.

    A1111 runs `p.sample` once per batch (batch count), calling `sd_models.reload_model_weights()`
    before each: that leaves the model as it is, so IC-Light stays on for the next batches. Only where
    a hires checkpoint or a refiner changed the model does the next batch activate IC-Light again on the
    model A1111 loaded back. IC-Light goes off at the end of the generation (`finish`, from
    `postprocess`, which also runs after an interrupt), when sampling raises, and when `p` is closed
    (A1111 closes it whatever happened, also after an error between sampling and `postprocess`).
    """
    original_sample, original_close = p.sample, p.close

    @functools.wraps(original_sample)
    def sample(*args: Any, **kwargs: Any) -> Any:
        try:
            host.activate(job.model)
            return original_sample(*args, **kwargs)
        except BaseException:
            host.deactivate()
            raise

    @functools.wraps(original_close)
    def close(*args: Any, **kwargs: Any) -> Any:
        host.deactivate()
        return original_close(*args, **kwargs)

    sample.iclight_takeover = close.iclight_takeover = True
    p.sample, p.close = sample, close


def finish(p: Any, host: Host) -> None:
    """The `postprocess` hook: the generation's sampling is over, IC-Light goes off."""
    if getattr(p, JOB_ATTR, None) is not None:
        host.deactivate()


def before_sampling(p: Any, x: torch.Tensor, host: Host) -> None:
    """The `process_before_every_sampling` hook: latents for this pass, routed to the UNet."""
    job = getattr(p, JOB_ATTR, None)
    if job is None:
        return
    is_hr_pass = getattr(p, "is_hr_pass", False)
    if getattr(p, "enable_hr", False):
        if is_hr_pass and job.values["hires_pass"] == "Off":
            return  # a plain hires pass
        if not is_hr_pass and (job.values["hires_pass"] == "Off" or job.hires_checkpoint is not None):
            hires_pass.switch_off_after_first_pass(p.sampler, lambda: switch_off_for_hires(job, host))
    try:
        if is_hr_pass:
            host.activate(job.model)  # nothing to do on the same checkpoint; merged onto another SD 1.x one
        height, width = x.shape[-2:]
        if job.light_maps and not is_hr_pass:
            # A1111 encodes init images with `/127.5 - 1` and a posterior sample; the reference uses
            # `/127 - 1` and the mode. Sampling reads `p.init_latent` after this hook.
            light = host.encode([job.layout.fit(m, width * 8, height * 8) for m in job.light_maps])
            light = light.expand(x.shape[0], -1, -1, -1).to(x) if light.shape[0] == 1 else light.to(x)
            mask = getattr(p, "mask", None)
            if mask is not None:
                # With an inpaint mask only the inpainted area starts from the light map; the rest stays the
                # picture (kept from the first batch: later batches find `p.init_latent` already mixed).
                # A1111 also blends towards `p.init_latent` by `mask` during and after sampling, so wherever
                # any of the picture is kept (a soft mask's feathered band too) it must be the picture alone.
                job.picture_latent = job.picture_latent if job.picture_latent is not None else p.init_latent
                light = torch.where(mask > 0, job.picture_latent, light)
            p.init_latent = light
        host.route(p.sampler, job.concat_latents(height, width, host.encode))
    except Exception as e:
        fail_sampling(p.sampler, e)


def switch_off_for_hires(job: IcLightJob, host: Host) -> None:
    """IC-Light off before the hires pass; its merged weights released when A1111 then loads another checkpoint."""
    host.deactivate()
    if job.hires_checkpoint is not None:
        host.release_merged_weights()


def fail_sampling(sampler: Any, error: Exception) -> None:
    """Make this pass's first denoiser call raise `error`, so the user sees it."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        raise error

    sampler.model_wrap_cfg.forward = forward
