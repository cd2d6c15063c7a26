"""Mirrors backend/modules/k_prediction.py (Forge dfdcbab6) `AbstractPrediction` (lines 67-110) and
`Prediction` (113-167) for epsilon models: the input scaled by `1 / sqrt(sigma^2 + 1)`, the denoised
`x - eps * sigma`, sigmas from the model's `alphas_cumprod`, a sigma's timestep the nearest discrete one."""
import torch


class Prediction(torch.nn.Module):
    def __init__(self, alphas_cumprod, sigma_data=1.0):
        super().__init__()
        self.sigma_data = sigma_data
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())

    def calculate_input(self, sigma, noise):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        return noise / (sigma ** 2 + self.sigma_data ** 2) ** 0.5

    def calculate_denoised(self, sigma, model_output, model_input):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        return model_input - model_output * sigma

    def timestep(self, sigma):
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def sigma(self, timestep):
        t = torch.clamp(timestep.float(), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()
