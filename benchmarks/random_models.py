"""A full-size SD 1.5 ldm UNet and an fc file in the released layout, both with random weights."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from iclight_a1111.unet.key_table import FIRST_CONV_LDM, diffusers_to_ldm

SD15_UNET = dict(
    image_size=64, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
    num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
    transformer_depth=1, context_dim=768, legacy=False,
)


def fingerprint(unet: torch.nn.Module) -> list[tuple]:
    return [(n, id(p), p.dtype, p.device, p.detach().float().sum().item(), p.detach().float().abs().max().item())
            for n, p in unet.named_parameters()]


def random_unet(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    unet = UNetModel(**SD15_UNET).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    unet.dtype = dtype
    return unet.to(device, dtype)


def write_random_fc_file(unet: torch.nn.Module, path: Path, in_channels: int = 8) -> None:
    """Random offsets for every key, first conv widened to `in_channels` inputs (8: fc, 12: fbc),
    diffusers names, fp16: as released."""
    g = torch.Generator().manual_seed(in_channels)
    ldm_to_diffusers = {v: k for k, v in diffusers_to_ldm().items()}
    tensors = {}
    for name, p in unet.named_parameters():
        shape = (p.shape[0], in_channels, *p.shape[2:]) if name == FIRST_CONV_LDM else tuple(p.shape)
        tensors[ldm_to_diffusers[name]] = (torch.randn(shape, generator=g) * 0.01).half()
    save_file(tensors, str(path))
