"""Mirrors the UNet batch construction of A1111 v1.10.1's CFGDenoiser.

modules/sd_samplers_cfg_denoiser.py, `CFGDenoiser.forward`: from `batch_size = len(conds_list)`
through the `x_out` computation (the `x_in`/`sigma_in`/`image_cond_in` rows, NGMS and
skip_early_cond dropping the uncond rows, `batch_cond_uncond` slicing, separate cond/uncond calls
for prompts of unequal token length, the fake uncond rows) and `combine_denoised`; and
modules/sd_samplers_kdiffusion.py, `CFGDenoiserKDiffusion.inner_model` (a k-diffusion
`CompVisDenoiser` around the model, made on first use).

Also the start of `CFGDenoiser.forward` (an interrupt raises `InterruptedException`, then
`sd_samplers_common.apply_refiner` may switch to the refiner), `update_inner_model`, and the last
latent kept for an interrupted sampler (A1111 keeps the prediction of the cond rows; here the
combined result).

The `cfg_denoiser` callback (lines 211-217) may replace or reorder the rows of `x_in`, `image_cond_in`,
`sigma_in` and the text conds before the UNet calls; the `cfg_denoised` callback (278-279) sees `x_out`.

Left out, unused by SD 1.x IC-Light: edit (InstructPix2Pix) models, mask blending, previews, prompt
padding (off by default).
One departure: `cond` arrives already reconstructed as `(conds_list, tensor)`, what A1111 gets from
`prompt_parser.reconstruct_multicond_batch(cond, self.step)`; the tensor is copied per step, as that
call makes a new one each step.
"""
import torch
from k_diffusion.external import CompVisDenoiser

from modules import script_callbacks, sd_samplers_common, shared


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler, total_steps=10):
        super().__init__()
        self.sampler = sampler
        self.p = None
        self.model_wrap = None
        self.step = 0
        self.total_steps = total_steps

    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = CompVisDenoiser(shared.sd_model)
        return self.model_wrap

    def update_inner_model(self):
        self.model_wrap = None

    def combine_denoised(self, x_out, conds_list, uncond, cond_scale):
        denoised_uncond = x_out[-uncond.shape[0]:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        return denoised

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if shared.state.interrupted or shared.state.skipped:
            raise sd_samplers_common.InterruptedException
        if self.p is not None:
            sd_samplers_common.apply_refiner(self, sigma)
        opts = shared.opts
        conds_list, tensor = cond
        batch_size = len(conds_list)
        repeats = [len(conds_list[i]) for i in range(batch_size)]

        def make_condition_dict(c_crossattn, c_concat):
            return {"c_crossattn": [c_crossattn], "c_concat": [c_concat]}

        def per_row(values, tail):
            return torch.cat([torch.stack([values[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [tail])

        x_in = per_row(x, x)
        sigma_in = per_row(sigma, sigma)
        image_cond_in = per_row(image_cond, image_cond)

        params = script_callbacks.CFGDenoiserParams(x_in, image_cond_in, sigma_in, self.step, self.total_steps,
                                                    tensor.clone(), uncond, self)
        script_callbacks.cfg_denoiser_callback(params)
        x_in, image_cond_in, sigma_in, tensor, uncond = params.x, params.image_cond, params.sigma, params.text_cond, params.text_uncond

        skip_uncond = False
        if opts.skip_early_cond != 0.0 and self.step / self.total_steps <= opts.skip_early_cond:
            skip_uncond = True
        elif (self.step % 2 or opts.s_min_uncond_all) and s_min_uncond > 0 and sigma[0] < s_min_uncond:
            skip_uncond = True

        if skip_uncond:
            x_in = x_in[:-batch_size]
            sigma_in = sigma_in[:-batch_size]

        if tensor.shape[1] == uncond.shape[1] or skip_uncond:
            cond_in = tensor if skip_uncond else torch.cat([tensor, uncond])
            if opts.batch_cond_uncond:
                x_out = self.inner_model(x_in, sigma_in, cond=make_condition_dict(cond_in, image_cond_in))
            else:
                x_out = torch.zeros_like(x_in)
                for a in range(0, x_out.shape[0], batch_size):
                    b = a + batch_size
                    x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b], cond=make_condition_dict(cond_in[a:b], image_cond_in[a:b]))
        else:
            x_out = torch.zeros_like(x_in)
            step = batch_size * 2 if opts.batch_cond_uncond else batch_size
            for a in range(0, tensor.shape[0], step):
                b = min(a + step, tensor.shape[0])
                x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b], cond=make_condition_dict(tensor[a:b], image_cond_in[a:b]))
            if not skip_uncond:
                n = uncond.shape[0]
                x_out[-n:] = self.inner_model(x_in[-n:], sigma_in[-n:], cond=make_condition_dict(uncond, image_cond_in[-n:]))

        denoised_image_indexes = [c[0][0] for c in conds_list]
        if skip_uncond:
            fake_uncond = torch.cat([x_out[i:i + 1] for i in denoised_image_indexes])
            x_out = torch.cat([x_out, fake_uncond])

        script_callbacks.cfg_denoised_callback(script_callbacks.CFGDenoisedParams(x_out, self.step, self.total_steps, self.inner_model))
        denoised = self.combine_denoised(x_out, conds_list, uncond, 1.0 if skip_uncond else cond_scale)
        self.step += 1
        self.sampler.last_latent = denoised
        return denoised
