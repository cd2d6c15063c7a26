"""Mirrors modules/sd_samplers_common.py (v1.10.1): `InterruptedException` (line 142) and
`apply_refiner` (lines 158-202): once the completed ratio of sampling reaches `p.refiner_switch_at`,
the refiner checkpoint is loaded with `sd_models.reload_model_weights` (under `SkipWritingToConfig`),
the conds are set up again and the denoiser's inner model is remade on the model now loaded."""
import torch

from modules import sd_models, shared


class InterruptedException(BaseException):
    pass


def apply_refiner(cfg_denoiser, sigma=None):
    if shared.opts.refiner_switch_by_sample_steps or sigma is None:
        completed_ratio = cfg_denoiser.step / cfg_denoiser.total_steps
        cfg_denoiser.p.extra_generation_params["Refiner switch by sampling steps"] = True
    else:
        timestep = torch.argmin(torch.abs(cfg_denoiser.inner_model.sigmas.to(sigma.device) - torch.max(sigma)))
        completed_ratio = (999 - timestep) / 1000

    refiner_switch_at = cfg_denoiser.p.refiner_switch_at
    refiner_checkpoint_info = cfg_denoiser.p.refiner_checkpoint_info

    if refiner_switch_at is not None and completed_ratio < refiner_switch_at:
        return False

    if refiner_checkpoint_info is None or shared.sd_model.sd_checkpoint_info == refiner_checkpoint_info:
        return False

    if getattr(cfg_denoiser.p, "enable_hr", False):
        is_second_pass = cfg_denoiser.p.is_hr_pass
        if shared.opts.hires_fix_refiner_pass == "first pass" and is_second_pass:
            return False
        if shared.opts.hires_fix_refiner_pass == "second pass" and not is_second_pass:
            return False
        if shared.opts.hires_fix_refiner_pass != "second pass":
            cfg_denoiser.p.extra_generation_params["Hires refiner"] = shared.opts.hires_fix_refiner_pass

    cfg_denoiser.p.extra_generation_params["Refiner"] = refiner_checkpoint_info.short_title
    cfg_denoiser.p.extra_generation_params["Refiner switch at"] = refiner_switch_at

    with sd_models.SkipWritingToConfig():
        sd_models.reload_model_weights(info=refiner_checkpoint_info)

    cfg_denoiser.p.setup_conds()
    cfg_denoiser.update_inner_model()
    return True
