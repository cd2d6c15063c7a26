"""Random-weight models of the real architectures, and IC-Light files laid out like the releases.

- ldm `UNetModel` (the class A1111 runs) at the SD 1.5 configuration or a tiny one with the same
  block layout (so the same 686 keys) and the SD1 text width 768.
- diffusers `UNet2DConditionModel` configs matching them, and ldm -> diffusers weights through
  diffusers' own converter (independent of the project's key table).
- the reference IC-Light model: the diffusers UNet with its first conv widened and its forward
  hooked to append the concat latents, weights merged by state-dict addition, as the reference
  demo (lllyasviel/IC-Light `gradio_demo.py`) does.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from safetensors.torch import save_file

LDM_UNET_FORWARD = UNetModel.forward

SD15_UNET = dict(
    image_size=64, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
    num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
    transformer_depth=1, context_dim=768, legacy=False,
)
TINY_UNET = {**SD15_UNET, "image_size": 8, "model_channels": 32}


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Every parameter random: a freshly built ldm UNet outputs exactly zero (zero-initialised out conv)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


def ldm_unet(config: dict = TINY_UNET, seed: int = 0) -> UNetModel:
    return randomize_(UNetModel(**config), seed).eval().requires_grad_(False)


def diffusers_config(config: dict = TINY_UNET) -> dict:
    ch = config["model_channels"]
    return dict(
        sample_size=config["image_size"], in_channels=4, out_channels=4,
        block_out_channels=tuple(ch * m for m in config["channel_mult"]), layers_per_block=2,
        cross_attention_dim=config["context_dim"], attention_head_dim=config["num_heads"],
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )


def to_diffusers_state(ldm_state: dict, config: dict = TINY_UNET) -> dict:
    """ldm UNet weights under diffusers names, by diffusers' own converter."""
    checkpoint = {"model.diffusion_model." + k: v for k, v in ldm_state.items()}
    return convert_ldm_unet_checkpoint(checkpoint, diffusers_config(config))


def random_offsets(unet: torch.nn.Module, in_channels: int, seed: int, dtype=torch.float16) -> dict:
    """Offsets for every key of `unet` (ldm names), first conv widened, like a released file."""
    g = torch.Generator().manual_seed(seed)
    offsets = {}
    for name, p in unet.named_parameters():
        shape = (p.shape[0], in_channels, *p.shape[2:]) if name == "input_blocks.0.0.weight" else p.shape
        offsets[name] = (torch.randn(shape, generator=g) * 0.02).to(dtype)
    return offsets


def write_offsets(path: Path, ldm_offsets: dict, layout: str, config: dict = TINY_UNET) -> Path:
    """Save offsets as a safetensors file: 'diffusers' (as released), 'ldm', or an ldm prefix."""
    if layout == "diffusers":
        tensors = to_diffusers_state(ldm_offsets, config)
    else:
        prefix = "" if layout == "ldm" else layout
        tensors = {prefix + k: v for k, v in ldm_offsets.items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def reference_iclight_unet(diffusers_state: dict, offsets_file: Path, config: dict = TINY_UNET) -> UNet2DConditionModel:
    """The reference algorithm: widen conv_in (zeros, base in the first 4 channels, base bias), hook
    forward to append `cross_attention_kwargs['concat_conds']`, then load `base + offset` for every key."""
    from safetensors.torch import load_file

    unet = UNet2DConditionModel(**diffusers_config(config))
    unet.load_state_dict(diffusers_state, strict=True)
    offsets = load_file(str(offsets_file))
    in_channels = offsets["conv_in.weight"].shape[1]
    with torch.no_grad():
        old = unet.conv_in
        wide = torch.nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
        wide.weight.zero_()
        wide.weight[:, :4].copy_(old.weight)
        wide.bias = old.bias
        unet.conv_in = wide
    plain_forward = unet.forward

    def hooked_forward(sample, timestep, encoder_hidden_states, **kwargs):
        concat = kwargs["cross_attention_kwargs"]["concat_conds"].to(sample)
        concat = torch.cat([concat] * (sample.shape[0] // concat.shape[0]), dim=0)
        kwargs["cross_attention_kwargs"] = {}
        return plain_forward(torch.cat([sample, concat], dim=1), timestep, encoder_hidden_states, **kwargs)

    unet.forward = hooked_forward
    base = unet.state_dict()
    unet.load_state_dict({k: base[k] + offsets[k] for k in base}, strict=True)
    return unet.eval().requires_grad_(False)


def memory_source(offsets):
    """An IC-Light `OffsetSource` over offsets already in memory (no file)."""
    from iclight_a1111.unet.offset_files import OffsetSource

    return OffsetSource(offsets.name, f"memory:{id(offsets)}", lambda: offsets)


def parameter_fingerprint(module: torch.nn.Module) -> dict:
    """name -> (object id, dtype, shape, device, sha256 of the bytes) for every parameter."""
    out = {}
    for name, p in module.named_parameters():
        data = p.detach().cpu().contiguous()
        digest = hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()
        out[name] = (id(p), str(p.dtype), tuple(p.shape), str(p.device), digest)
    return out


def tiny_latent_diffusion(seed: int = 0):
    """A real ldm `LatentDiffusion` (real `apply_model`, `DiffusionWrapper`, AutoencoderKL) at tiny size.

    ldm builds it unconditional when it has no text encoder config; `conditioning_key` is then set
    to "crossattn", which is what an SD 1.x config gives the DiffusionWrapper.
    """
    from ldm.models.diffusion.ddpm import LatentDiffusion

    unet_config = {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": TINY_UNET}
    vae_config = {
        "target": "ldm.models.autoencoder.AutoencoderKL",
        "params": {
            "embed_dim": 4,
            "ddconfig": dict(double_z=True, z_channels=4, resolution=64, in_channels=3, out_ch=3, ch=32,
                             ch_mult=[1, 2, 2, 2], num_res_blocks=1, attn_resolutions=[], dropout=0.0),
            "lossconfig": {"target": "torch.nn.Identity"},
        },
    }
    model = LatentDiffusion(
        first_stage_config=vae_config, cond_stage_config="__is_unconditional__", unet_config=unet_config,
        scale_factor=0.18215, linear_start=0.00085, linear_end=0.012, timesteps=1000,
        cond_stage_key="txt", first_stage_key="jpg", image_size=8, channels=4, use_ema=False,
    )
    model.model.conditioning_key = "crossattn"
    return randomize_(model, seed).eval().requires_grad_(False)


def diffusers_autoencoder_kl() -> type:
    """diffusers' `AutoencoderKL`, imported on its own: the `diffusers.models.autoencoders` package
    `__init__` also imports an autoencoder that needs a newer transformers than A1111's pin."""
    package = "diffusers.models.autoencoders"
    if package not in sys.modules:
        module = types.ModuleType(package)
        module.__path__ = list(importlib.util.find_spec(package).submodule_search_locations)
        sys.modules[package] = module
    return importlib.import_module(package + ".autoencoder_kl").AutoencoderKL
