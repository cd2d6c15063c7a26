"""IC-Light during sampling: `p.sample` taken over so the IC-Light UNet is on, latents routed per pass.

A1111 swallows exceptions raised in script hooks; errors found here are raised from `p.init` or from
the sampler's first denoiser call, steps whose errors reach the user.
"""
from __future__ import annotations

import functools
from typing import Any

import torch

from . import hires_pass
from .job import JOB_ATTR, Host, IcLightJob
from .other_extensions import refuse_unsupported

TAKEN_OVER = ("init", "sample", "close")


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
    model A1111 loaded back. IC-Light goes off after the last batch's sampling, at the end of the generation
    (`finish`, from `postprocess`, which also runs after an interrupt), when sampling raises, and when `p`
    is closed (A1111 closes it whatever happened, also after an error between sampling and `postprocess`).
    `p.init`, which runs after every script's `process` hook, first refuses other extensions' settings
    IC-Light cannot run with, and skips A1111's encode of the picture where nothing uses it.
    """
    original_init, original_sample, original_close = p.init, p.sample, p.close
    # img2img without an inpaint mask, starting from the light map: A1111's `p.init` encodes the picture into
    # `p.init_latent` (one VAE encode per image), which `before_sampling` replaces by the light map's latent
    # before anything reads it. With a mask (soft inpainting too) or Light None the picture's latent is used;
    # overlays and colour correction use pixels.
    skip_picture_encode = bool(job.light_maps) and getattr(p, "image_mask", None) is None

    @functools.wraps(original_init)
    def init(*args: Any, **kwargs: Any) -> Any:
        refuse_unsupported(p)
        if not skip_picture_encode:
            return original_init(*args, **kwargs)
        with host.picture_not_encoded():
            return original_init(*args, **kwargs)

    @functools.wraps(original_sample)
    def sample(*args: Any, **kwargs: Any) -> Any:
        try:
            if not given_first_pass(p):
                host.activate(job.model)
            samples = original_sample(*args, **kwargs)
        except BaseException:
            host.deactivate()
            raise
        if job.picture_latent is not None:
            # After sampling `p.init_latent` is the picture's again: soft inpainting's `post_sample`
            # compares the samples with it to paste the picture back where they barely differ.
            p.init_latent = job.picture_latent
        if getattr(p, "iteration", 0) >= getattr(p, "n_iter", 1) - 1:
            # The last batch's sampling (hires pass and refiner included) is over: off now, so that nothing is
            # left on when decoding fails and A1111 neither runs `postprocess` nor closes `p` (an X/Y/Z cell).
            host.deactivate()
        return samples

    @functools.wraps(original_close)
    def close(*args: Any, **kwargs: Any) -> Any:
        job.under_way = False
        host.deactivate()
        return original_close(*args, **kwargs)

    init.iclight_takeover = sample.iclight_takeover = close.iclight_takeover = True
    p.init, p.sample, p.close = init, sample, close


def given_first_pass(p: Any) -> bool:
    """txt2img's *Upscale* button: the chosen result is the first pass (v1.10.1 processing.py ~1310):
    nothing is sampled before the hires pass, whose hook switches IC-Light on when that pass uses it."""
    return getattr(p, "firstpass_image", None) is not None and getattr(p, "enable_hr", False)


def finish(p: Any, host: Host) -> bool:
    """The `postprocess` hook: IC-Light goes off, its merged copy kept. True at the generation's own end,
    where the extras are due; False on a copy of `p`. ADetailer calls it on one before its face pass, a whole
    img2img inside this generation: that pass so runs on the checkpoint's own UNet without A1111's
    `apply_unet` switching IC-Light off and releasing its merged copy, and the next batch turns IC-Light on
    again from that copy."""
    job = getattr(p, JOB_ATTR, None)
    if job is None:
        return False
    host.deactivate()
    if job.owner is None or job.owner() is not p:
        return False
    job.under_way = False
    return True


def repeated_on_copy(p: Any) -> bool:
    """Whether `p` is a copy of a generation's `p` made while that generation runs. ADetailer calls
    `postprocess` on `copy(p)` before its face pass (at each batch's first image), and `before_process` and
    `process` on `copy(p)` after it (at the batch's last), for scripts to step aside and set up again."""
    job = getattr(p, JOB_ATTR, None)
    return job is not None and job.under_way and job.owner is not None and job.owner() is not p


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
        # A1111 encodes init images with `/127.5 - 1` and a posterior sample; the reference uses
        # `/127 - 1` and the mode. Sampling reads `p.init_latent` after this hook.
        light, concat = job.pass_latents(height, width, host.encode, light=bool(job.light_maps) and not is_hr_pass)
        if light is not None:
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
        host.route(p, concat)
    except Exception as e:
        fail_sampling(p.sampler, e)


def drop_replaced_masked_content(p: Any) -> None:
    """The `process_batch` hook (after `p.init` wrote "Masked content", before A1111 writes params.txt
    and the infotexts): where the light map replaces the start of every inpainted latent (see
    `before_sampling`), A1111's masked content was not used, and the infotext does not claim it was.
    A soft mask's feathered band does start from A1111's latent: there the entry stays."""
    job = getattr(p, JOB_ATTR, None)
    nmask = getattr(p, "nmask", None)
    if job is None or not job.light_maps or nmask is None:
        return
    if not ((nmask > 0) & (nmask < 1)).any():
        p.extra_generation_params.pop("Masked content", None)


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
