"""The `process` and `before_process` hooks: check a generation's IC-Light arguments and build its job.

A1111 swallows exceptions raised in script hooks and goes on generating without the extension's
effect. So the hooks never raise: a refusal found here is raised from `p.init` instead (see
`sampling.refuse_generation`), a step whose errors A1111 lets reach the user.
"""
from __future__ import annotations

import random
import weakref
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import IcLightError
from ..images.background_removal import check_feed
from ..images.composite import flatten_on
from ..images.image_decoding import decode_image
from ..images.normals import NORMAL_LIGHTS
from ..images.resize_modes import REFERENCE, img2img_layout
from . import hires_pass
from .infotext import infotext_entries, is_infotext_key
from .job import IMG2IMG_PICTURE, JOB_ATTR, OVERRIDES_ATTR, Host, IcLightJob
from .light_map import flatten, light_maps
from .params import PARAMS_BY_KEY
from .sampling import release, refuse_generation, repeated_on_copy, take_over_sampling
from .values import values_from_args


def start(p: Any, args: Sequence[Any], host: Host) -> None:
    """The `process` hook: check everything, prepare the job and take over `p.sample`.

    Every generation starts with IC-Light off and nothing of it kept for a model not in use: a
    generation that ended without `postprocess` or `p.close` (an X/Y/Z cell that failed) left it on,
    and A1111 may have switched checkpoints since without telling anyone. Should that fail, no
    generation runs on weights IC-Light could not restore. On a copy of `p` made while its generation
    runs (ADetailer's) the job stands as it is: no second background removal, no second takeover."""
    if repeated_on_copy(p):
        return
    release(p)
    drop_stale_infotext(p)
    flatten_given_first_pass(p, host.picture_background())
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
    job.owner = weakref.ref(p)
    setattr(p, JOB_ATTR, job)
    take_over_sampling(p, host, job)


def flatten_given_first_pass(p: Any, colour: str) -> None:
    """txt2img's *Upscale* button on a transparent result: A1111 takes the image's array as it is, and
    four channels cannot be encoded. Flattened on `colour` as A1111 flattens img2img pictures."""
    image = getattr(p, "firstpass_image", None)
    if isinstance(image, Image.Image) and image.mode != "RGB":
        p.firstpass_image = Image.fromarray(flatten_on(np.array(image.convert("RGBA")), colour))


def drop_stale_infotext(p: Any) -> None:
    """Give `p` generation parameters without IC-Light keys, in a new dict: X/Y/Z cells are shallow
    copies of one `p` sharing one dict, so a cell would otherwise carry the previous cell's keys."""
    p.extra_generation_params = {k: v for k, v in p.extra_generation_params.items() if not is_infotext_key(k)}


def prepare_batch(p: Any, args: Sequence[Any]) -> None:
    """The `before_process` hook (A1111 sets prompts and seeds up after it): a normal map needs its
    four relights in one batch, all with one seed. Problems are left for `start` to report."""
    if repeated_on_copy(p) or not requested(args, p):
        return
    try:
        values = {**values_from_args(args), **getattr(p, OVERRIDES_ATTR, {})}
    except IcLightError:
        return
    if not (values["enabled"] and values["normal_map"]):
        return
    pictures = getattr(p, "init_images", None)
    if pictures and len(pictures) > 1 and all(i is pictures[0] for i in pictures):
        # The Batch tab gives each file as `[image] * batch size`, the batch size it had before this
        # hook: one picture, which A1111 then repeats over the batch of four (more than four would be
        # refused, fewer would cut the batch back).
        p.init_images = pictures[:1]
    if isinstance(p.seed, int):
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
    """Check the request against `p` and the model files, and build the job; raises what it refuses."""
    if values["restore_detail"] and values["detail_size"] % 2 == 0:
        raise IcLightError(f"IC-Light detail blur size must be odd, got {values['detail_size']}.")
    host.check_generation(p)
    hires_checkpoint = host.hires_checkpoint(p)
    if getattr(p, "enable_hr", False):
        on = hires_pass.uses_iclight(values["hires_pass"], hires_checkpoint)
        values["hires_pass"] = "On" if on else "Off"  # as run: what a pasted infotext restores
    else:
        values["hires_pass"] = PARAMS_BY_KEY["hires_pass"].default  # no hires pass: nothing of it to record
    model = host.find_model(values["model"])
    values["model"] = model.name
    is_img2img = getattr(p, "init_images", None) is not None
    if is_img2img and getattr(p, "image_mask", None) is not None and getattr(p, "inpaint_full_res", False):
        raise IcLightError(
            "IC-Light relights the whole picture, but 'Inpaint area: Only masked' crops it: choose 'Whole picture'."
        )
    init_pictures = decoded_init_images(p) if is_img2img else []
    images = subject_images(values, is_img2img, init_pictures)
    subject_field = "foreground" if values["foreground"] is not None else IMG2IMG_PICTURE
    if values["normal_map"]:
        if not is_img2img or model.variant != "fc" or len(images) != 1:
            raise IcLightError("IC-Light 'Normal map' works in img2img with an fc model and one subject.")
        if p.batch_size != len(NORMAL_LIGHTS):
            raise IcLightError(f"IC-Light 'Normal map' needs a batch of {len(NORMAL_LIGHTS)}; the batch is {p.batch_size}.")

    inputs = [np.ascontiguousarray(i[..., :3]) for i in images]
    if is_img2img:
        # A1111's picture: the init images flattened on its img2img background colour, fitted by its resize mode.
        pictures = [flatten_on(i, host.picture_background()) for i in init_pictures]
        layout = img2img_layout(getattr(p, "resize_mode", 0))
    else:
        pictures, layout = inputs, REFERENCE
    job = IcLightJob(values, model, inputs, [None] * len(inputs), layout, pictures, hires_checkpoint=hires_checkpoint,
                     image_format=host.image_format(), subject_field=subject_field)
    job.check_fits(p.width, p.height)  # before any work on the images: the remover, the light maps
    if values["remove_background"]:
        for subject in inputs:
            check_feed(subject.shape[1], subject.shape[0], subject_field)
        job.alphas = host.predict_alphas(inputs)
    else:
        job.alphas = [own_alpha(i) for i in images]
    refuse_without_alphas(values, model.variant, job.alphas)
    add_conditions(job, p, is_img2img)
    p.extra_generation_params.update(infotext_entries(values, model.variant, is_img2img, host.short_hash(model)))
    return job


def refuse_without_alphas(values: Mapping[str, Any], variant: str, alphas: list[np.ndarray | None]) -> None:
    """Outputs and backgrounds that need the subject's outline refuse a subject without one."""
    for needs_alpha, what in ((values["output"] != "Generated", f"'Output: {values['output']}'"),
                              (variant == "fbc" and values["background_source"] == "Original picture",
                               "'Background: Original picture'")):
        if needs_alpha and any(a is None for a in alphas):
            raise IcLightError(
                f"IC-Light {what} needs to know where the subject is: turn on 'Remove background', "
                "or give the subject as an RGBA image whose alpha marks it."
            )


def add_conditions(job: IcLightJob, p: Any, is_img2img: bool) -> None:
    """The fbc background, or the light maps an img2img fc generation starts from."""
    values = job.values
    if job.model.variant == "fbc":
        if values["background_source"].startswith("Upload"):
            if values["background"] is None:
                raise IcLightError(
                    "The fbc IC-Light model needs a background: upload a background image, or choose a light "
                    "gradient (Left, Right, Top, Bottom, Ambient) as Background."
                )
            background = flatten(values["background"])
            job.layout.check_fit((background.shape[1], background.shape[0]), p.width, p.height, "background")
            job.background = np.fliplr(background).copy() if values["background_source"] == "Upload, flipped" else background
    elif is_img2img and (values["light"] != "None" or values["normal_map"]):
        # The light maps replace the initial latent after `p.init` (see `before_sampling`); the init
        # images stay the user's picture, which A1111 uses for masks, overlays and colour correction.
        job.light_maps = light_maps(job, p.width, p.height)


def own_alpha(image: np.ndarray) -> np.ndarray | None:
    """An RGBA subject's alpha (0..1). A fully opaque alpha (what the img2img box sends for an
    ordinary photo) says nothing about where the subject is: None, like RGB."""
    if image.shape[2] != 4 or image[..., 3].min() == 255:
        return None
    return image[..., 3].astype(np.float32) / 255.0


def decoded_init_images(p: Any) -> list[np.ndarray]:
    """The img2img init images as arrays, each image object decoded once (the Batch tab gives each file as
    `[image] * batch size`, and the subject and the picture are the same image)."""
    decoded: dict[int, np.ndarray] = {}
    for image in p.init_images:
        if image is not None and id(image) not in decoded:
            decoded[id(image)] = decode_image(image, IMG2IMG_PICTURE)
    return [decoded[id(i)] for i in p.init_images if i is not None]


def subject_images(values: Mapping[str, Any], is_img2img: bool, init_pictures: list[np.ndarray]) -> list[np.ndarray]:
    if values["foreground"] is not None:
        return [values["foreground"]]
    if is_img2img:
        if not init_pictures:
            raise IcLightError("IC-Light needs a subject: put the picture to relight in the img2img image box.")
        if all(i is init_pictures[0] for i in init_pictures):
            return init_pictures[:1]  # the Batch tab's [image] * batch size: one subject
        return init_pictures
    raise IcLightError("IC-Light needs a foreground: upload the subject to relight in the IC-Light panel.")
