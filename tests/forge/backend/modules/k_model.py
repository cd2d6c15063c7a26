"""Mirrors backend/modules/k_model.py (Forge dfdcbab6) `KModel` lines 7-46: the UNet as `diffusion_model`
(so its parameters are `diffusion_model.<ldm name>`), and `apply_model`: the input scaled by the predictor,
`c_concat` appended on the channels, the UNet called with the timestep of the sigma, the denoised returned."""
import torch


class KModel(torch.nn.Module):
    def __init__(self, model, predictor, computation_dtype=torch.float32):
        super().__init__()
        self.diffusion_model = model
        self.predictor = predictor
        self.computation_dtype = computation_dtype

    def apply_model(self, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        sigma = t
        xc = self.predictor.calculate_input(sigma, x)
        if c_concat is not None:
            xc = torch.cat([xc] + [c_concat], dim=1)
        xc = xc.to(self.computation_dtype)
        t = self.predictor.timestep(t).float()
        context = c_crossattn.to(self.computation_dtype)
        model_output = self.diffusion_model(xc, t, context=context, control=control, transformer_options=transformer_options).float()
        return self.predictor.calculate_denoised(sigma, model_output, x)
