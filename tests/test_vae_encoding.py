"""Images into latents as the reference does: `/127 - 1`, posterior mode x 0.18215, resize and centre crop."""
import numpy as np
import pytest
import torch

from iclight_a1111.images.vae_encoding import composite_on_grey, encode_latents, resize_and_center_crop, vae_input
from reference_pipeline import diffusers_vae, reference_resize_and_center_crop
from tiny_models import tiny_latent_diffusion


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pixels_map_with_grey_127_at_exactly_zero():
    image = np.array([[[0, 127, 254]]], dtype=np.uint8)
    assert vae_input([image]).flatten().tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("source", [(333, 517), (640, 512), (100, 1000), (1000, 90), (7, 9)])
@pytest.mark.parametrize("target", [(512, 640), (768, 512), (64, 64)])
def test_resize_and_center_crop_equals_reference(source, target):
    image = random_image(*source)
    ours = resize_and_center_crop(image, *target)
    assert ours.shape == (target[1], target[0], 3)
    assert np.array_equal(ours, reference_resize_and_center_crop(image, *target)), f"{source} -> {target} differs"


@pytest.mark.parametrize("target", [(513, 771), (65, 63)])
def test_resize_and_center_crop_gives_exact_odd_sizes(target):
    assert resize_and_center_crop(random_image(300, 401), *target).shape == (target[1], target[0], 3)


def test_grey_composite_follows_alpha():
    rgb = np.full((1, 3, 3), 227, dtype=np.uint8)
    alpha = np.array([[0.0, 0.5, 1.0]])
    assert composite_on_grey(rgb, alpha)[0, :, 0].tolist() == [127, 177, 227]


def test_latents_are_the_posterior_mode_times_scale_like_diffusers_vae():
    sd_model = tiny_latent_diffusion(seed=11)
    vae = diffusers_vae(sd_model)
    images = [random_image(64, 64, seed=s) for s in (1, 2)]

    ours = encode_latents(images, sd_model.encode_first_stage, sd_model.scale_factor)
    with torch.no_grad():
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.0 - 1.0
        expected = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        sampled = sd_model.get_first_stage_encoding(sd_model.encode_first_stage(x))
    diff = (ours - expected).abs().max().item()
    assert diff < 1e-5, f"latents differ from the reference VAE encoding by {diff:.3g}"
    assert (ours - sampled).abs().max() > 1e-3, "get_first_stage_encoding samples; ours must be the mode"


def test_adapter_encodes_with_the_current_checkpoint_vae(a1111):
    from iclight_a1111.webui import host as webui_host

    images = [random_image(64, 64, seed=3)]
    expected = encode_latents(images, a1111.sd_model.encode_first_stage, 0.18215)
    assert torch.equal(webui_host.encode_images(images), expected)
