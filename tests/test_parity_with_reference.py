"""Our ldm path vs the reference IC-Light algorithm on diffusers, same weights, same inputs."""
import gc

import pytest
import torch

from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.unet.offset_files import file_source
from tiny_models import (
    LDM_UNET_FORWARD, SD15_UNET, TINY_UNET, ldm_unet, random_offsets, reference_iclight_unet, to_diffusers_state,
    write_offsets,
)


def noise_prediction_diff(config, in_channels, tmp_path, latent_size, batch=2):
    unet = ldm_unet(config, seed=1)
    offsets_file = write_offsets(tmp_path / "iclight.safetensors", random_offsets(unet, in_channels, seed=2), "diffusers", config)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 4, latent_size, latent_size, generator=g)
    concat = torch.randn(batch, in_channels - 4, latent_size, latent_size, generator=g)
    t = torch.tensor([999.0, 321.0][:batch])
    context = torch.randn(batch, 77, 768, generator=g)

    with torch.no_grad():
        reference = reference_iclight_unet(to_diffusers_state(unet.state_dict(), config), offsets_file, config)
        expected = reference(x, t, context, cross_attention_kwargs={"concat_conds": concat}).sample
        del reference
        gc.collect()

        iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), file_source(offsets_file))
        iclight.activate()
        with iclight.concat_latents(concat):
            ours = iclight(x, t, context)
        iclight.deactivate()
    return (ours - expected).abs().max().item(), expected.abs().mean().item()


@pytest.mark.parametrize("variant,in_channels", [("fc", 8), ("fbc", 12)])
def test_tiny_unet_matches_reference_iclight(variant, in_channels, tmp_path, report):
    diff, scale = noise_prediction_diff(TINY_UNET, in_channels, tmp_path, latent_size=8)
    report(f"parity {variant} tiny config: max |diff| = {diff:.3g} (mean |output| {scale:.3g})")
    assert scale > 1e-2, "reference output is near zero: the comparison would prove nothing"
    assert diff <= 1e-5, f"{variant}: our noise prediction differs from the reference by {diff:.3g} (> 1e-5)"


@pytest.mark.xdist_group("full_size_sd15")  # about 6 GB each: one at a time
@pytest.mark.parametrize("variant,in_channels", [("fc", 8), ("fbc", 12)])
def test_full_sd15_unet_matches_reference_iclight(variant, in_channels, tmp_path, report):
    diff, scale = noise_prediction_diff(SD15_UNET, in_channels, tmp_path, latent_size=8)
    gc.collect()
    report(f"parity {variant} full SD1.5 config (8x8 latent): max |diff| = {diff:.3g} (mean |output| {scale:.3g})")
    assert scale > 1e-2, "reference output is near zero: the comparison would prove nothing"
    assert diff <= 5e-5, f"{variant}: our noise prediction differs from the reference by {diff:.3g} (> 5e-5)"
