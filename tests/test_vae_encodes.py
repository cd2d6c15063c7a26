"""img2img with IC-Light encodes with the VAE only what is used: A1111's encode of the picture is skipped
when the light map's latent replaces it, and kept for a mask (soft inpainting too) and for Light None."""
import contextlib

import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, subject


@pytest.fixture
def encodes(a1111, monkeypatch):
    """The batch size of each call of the checkpoint's VAE encoder."""
    calls = []
    vae = a1111.sd_model.first_stage_model
    encode = vae.encode
    monkeypatch.setattr(vae, "encode", lambda x: calls.append(x.shape[0]) or encode(x))
    return calls


def mask():
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 255
    return Image.fromarray(m)


@pytest.mark.parametrize("light, masked, expected", [
    ("Left", False, [1, 1]),  # the light map, the subject
    ("Left", True, [1, 1, 1]),  # the picture (kept outside the mask), the light map, the subject
    ("None", False, [1, 1]),  # the picture (the start), the subject
])
def test_only_the_latents_used_are_encoded(a1111, encodes, light, masked, expected):
    from modules import processing

    kwargs = {"mask": mask()} if masked else {}
    processing.run_generation(img2img([{"enabled": True, "light": light}], [pil(subject())], steps=2, **kwargs))
    assert encodes == expected, f"VAE encodes {encodes}, expected {expected}"
    assert "encode_first_stage" not in vars(a1111.sd_model), "the model's encoder was left replaced"


def test_skipping_the_picture_encode_changes_no_pixel(a1111, monkeypatch):
    from modules import processing

    from iclight_a1111.webui import host

    def generate():
        p = img2img([{"enabled": True, "light": "Right"}], [pil(subject(seed=3))], steps=2, batch_size=2)
        return [np.array(i) for i in processing.run_generation(p).images]

    skipped = generate()
    monkeypatch.setattr(host.A1111Host, "picture_not_encoded", lambda self: contextlib.nullcontext())
    encoded = generate()
    assert all(np.array_equal(a, b) for a, b in zip(skipped, encoded)) and len(skipped) == 2
