"""Mirrors backend/sampling/sampling_function.py (Forge dfdcbab6):

- `sampling_function` (lines 325-363): the UNet patcher is read from the denoiser's model
  (`inner_model.inner_model.forge_objects.unet`); its `extra_concat_condition` (else the pass's
  `image_cond`) becomes every cond's and uncond's `c_concat` only when its batch and size are x's (342-350).
- `calc_cond_uncond_batch` (154-289): cond and uncond rows in one call of the model's `apply_model` (or of
  `model_options['model_function_wrapper']` with `{"input", "timestep", "c", "cond_or_uncond"}`, 270-273),
  each entry's conditions concatenated on the batch; then classifier-free guidance (`sampling_function_inner`
  292-322, without the cfg-1 shortcut).
- `sampling_prepare` (366-399): the UNet patcher loaded (`load_models_gpu`), which merges its patches.
Departures: one cond entry (a prompt's embedding per image) and one uncond entry, no areas or ControlNet."""
import torch

from backend import memory_management


def sampling_prepare(unet, x):
    memory_management.load_models_gpu(models=[unet] + unet.extra_model_patchers_during_sampling)


def sampling_cleanup(unet):
    pass


def calc_cond_uncond_batch(model, cond, uncond, x, timestep, model_options):
    entries = [(0, cond), (1, uncond)]
    input_x = torch.cat([x for _ in entries])
    c = {"c_crossattn": torch.cat([e["c_crossattn"] for _, e in entries])}
    if "c_concat" in cond:
        c["c_concat"] = torch.cat([e["c_concat"] for _, e in entries]).to(x.device)
    c["transformer_options"] = {"cond_or_uncond": [i for i, _ in entries]}
    t = torch.cat([timestep for _ in entries])
    wrapper = model_options.get("model_function_wrapper")
    if wrapper is not None:
        output = wrapper(model.apply_model, {"input": input_x, "timestep": t, "c": c, "cond_or_uncond": [0, 1]})
    else:
        output = model.apply_model(input_x, t, **c)
    return output.chunk(2)


def sampling_function(self, denoiser_params, cond_scale, cond_composition):
    unet_patcher = self.inner_model.inner_model.forge_objects.unet
    x = denoiser_params.x
    cond, uncond = {"c_crossattn": denoiser_params.text_cond}, {"c_crossattn": denoiser_params.text_uncond}
    image_cond_in = unet_patcher.extra_concat_condition
    if image_cond_in is None:
        image_cond_in = denoiser_params.image_cond
    if isinstance(image_cond_in, torch.Tensor) and image_cond_in.shape[0] == x.shape[0] \
            and image_cond_in.shape[2:] == x.shape[2:]:
        cond["c_concat"] = uncond["c_concat"] = image_cond_in
    cond_pred, uncond_pred = calc_cond_uncond_batch(unet_patcher.model, cond, uncond, x, denoiser_params.sigma,
                                                    unet_patcher.model_options)
    return uncond_pred + (cond_pred - uncond_pred) * cond_scale, cond_pred, uncond_pred
