"""IC-Light's images land on the pixels of A1111's img2img picture, for every resize mode."""
import numpy as np
import pytest
import torch
from PIL import Image

from generation_harness import img2img, pil
from iclight_a1111.images.resize_modes import RESIZE_MODES, resize_like_img2img

SOURCES = [(150, 90), (90, 150), (131, 77)]  # width, height: wider, taller, odd
OUTPUTS = [(128, 64), (64, 128), (96, 97)]


def marker_picture(width, height):
    """A gradient with a white square off the centre and a red bar along the left edge."""
    yy, xx = np.mgrid[:height, :width]
    image = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 60)], axis=-1).astype(np.uint8)
    image[height // 5:height // 5 + 12, width * 2 // 3:width * 2 // 3 + 12] = 255
    image[:, :4] = (255, 0, 0)
    return image


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_each_resize_mode_places_pixels_as_a1111_does(mode, source, output):
    from modules import images

    picture = marker_picture(*source)
    # A1111 stretches the picture for mode 3 (in latent space); its resize_image only serves masks there.
    webui_mode = 0 if mode == 3 else mode
    expected = np.array(images.resize_image(webui_mode, pil(picture), *output))
    assert np.array_equal(resize_like_img2img(picture, mode, *output), expected), f"RGB, mode {mode}"
    grey = picture[..., 0]
    expected_grey = np.array(images.resize_image(webui_mode, Image.fromarray(grey), *output).convert("L"))
    assert np.array_equal(resize_like_img2img(grey, mode, *output), expected_grey), f"single channel, mode {mode}"


@pytest.fixture
def encoded(monkeypatch):
    """Every list of images IC-Light hands to the VAE, in order."""
    from iclight_a1111.webui import host as webui_host

    calls = []
    encode = webui_host.encode_images

    def recording(images):
        calls.append([np.array(i) for i in images])
        return encode(images)

    monkeypatch.setattr(webui_host, "encode_images", recording)
    return calls


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_subject_condition_is_a1111s_picture_with_light_none_and_a_mask(a1111, encoded, monkeypatch, mode):
    from modules import processing, shared

    monkeypatch.setattr(shared.opts, "img2img_color_correction", True)  # keeps A1111's fitted picture
    picture = marker_picture(150, 90)
    mask = Image.new("L", (150, 90), 0)
    mask.paste(255, (0, 0, 75, 90))
    p = img2img([{"enabled": True, "light": "None"}], [pil(picture)], mask=mask, steps=2, denoising_strength=0.9,
                resize_mode=mode, width=64, height=128)
    processing.process_images(p)
    condition = encoded[0][0]
    assert np.array_equal(condition, p.color_corrections[0]), f"mode {mode}: the subject condition is not A1111's picture"
    overlay = np.array(p.overlay_images[0])
    kept = overlay[..., 3] == 255
    assert kept.any() and np.array_equal(condition[kept], overlay[..., :3][kept]), f"mode {mode}: the kept area differs"


def test_latent_upscale_mode_conditions_on_the_stretched_picture(a1111, encoded):
    from modules import images, processing

    picture = marker_picture(150, 90)
    p = img2img([{"enabled": True, "light": "None"}], [pil(picture)], steps=2, denoising_strength=0.9,
                resize_mode=3, width=64, height=128)
    processing.process_images(p)
    assert np.array_equal(encoded[0][0], np.array(images.resize_image(0, pil(picture), 64, 128)))


@pytest.mark.parametrize("feathering", ["drawn", "mask blur"])
def test_soft_mask_keeps_the_pure_picture_wherever_any_of_it_is_kept(a1111, feathering, monkeypatch):
    """Soft inpainting (`mask_round=False`): A1111 blends towards `p.init_latent` by `mask` during and
    after sampling, so the light latent must not reach any place where the mask keeps something."""
    from modules import processing, sd_samplers

    starts = []
    sample_img2img = sd_samplers.KDiffusionSampler.sample_img2img

    def recording(self, p, x, *args, **kwargs):
        starts.append(x.clone())  # the latent sampling starts from (`p.init_latent` after the hook)
        return sample_img2img(self, p, x, *args, **kwargs)

    monkeypatch.setattr(sd_samplers.KDiffusionSampler, "sample_img2img", recording)

    from iclight_a1111.generation.job import JOB_ATTR

    if feathering == "drawn":
        ramp = np.clip((np.arange(64) - 16) * 255 / 32, 0, 255).astype(np.uint8)  # kept | feathered | inpainted
        mask, blur = Image.fromarray(np.tile(ramp, (64, 1))), 0
    else:
        mask, blur = Image.new("L", (64, 64), 0), 8
        mask.paste(255, (32, 0, 64, 64))
    p = img2img([{"enabled": True, "light": "Right"}], [pil(marker_picture(64, 64))], mask=mask, mask_round=False,
                mask_blur=blur, steps=2, denoising_strength=0.9)
    processing.process_images(p)
    picture = getattr(p, JOB_ATTR).picture_latent
    keep = p.mask > 0
    assert ((p.mask > 0) & (p.mask < 1)).any(), "the test mask has no feathered band at latent size"
    (start,) = starts
    assert torch.equal(start[:, keep], picture[:, keep]), "the light latent leaks where the picture is kept"
    inpainted = p.nmask == 1
    assert not torch.equal(start[:, inpainted], picture[:, inpainted]), "the inpainted area does not start from the light"
