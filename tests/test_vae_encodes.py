"""IC-Light encodes with the VAE only what is used, once: A1111's encode of the picture is skipped when
the light map's latent replaces it (kept for a mask, soft inpainting too, and for Light None); the light
map, the subjects and the fbc background are encoded once per generation whatever its batch count; and
none of it changes a pixel."""
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


@pytest.mark.parametrize("variant, n_iter, batch_size, expected", [
    ("fc", 3, 1, [1, 1]),  # the light map and the subject, for the first batch only
    ("fc", 2, 2, [1, 1]),  # one light map for the whole batch, the one subject
    ("fbc", 3, 2, [1, 1]),  # the subject, the background
])
def test_a_generation_encodes_its_inputs_once_whatever_its_batch_count(a1111, encodes, variant, n_iter, batch_size,
                                                                        expected):
    from modules import processing

    args = {"enabled": True, "light": "Left", "model": a1111.model_file(variant).label}
    if variant == "fbc":
        args.update(light="None", background_source="Left")
    processing.run_generation(img2img([args], [pil(subject())], steps=2, n_iter=n_iter, batch_size=batch_size))
    picture = [batch_size] if variant == "fbc" else []  # A1111's own encode: Light None starts from the picture
    assert encodes == picture + expected, f"VAE encodes {encodes}, expected {picture + expected}"


def test_encoding_the_light_map_once_changes_no_pixel(a1111, monkeypatch):
    from modules import processing

    from iclight_a1111.generation.job import IcLightJob

    def generate():
        p = img2img([{"enabled": True, "light": "Right"}], [pil(subject(seed=5))], steps=2, batch_size=2, n_iter=2)
        return [np.array(i) for i in processing.run_generation(p).images]

    once = generate()
    pass_latents = IcLightJob.pass_latents

    def encoded_every_batch(job, *args, **kwargs):
        job.light_latents.clear()
        return pass_latents(job, *args, **kwargs)

    monkeypatch.setattr(IcLightJob, "pass_latents", encoded_every_batch)
    every_batch = generate()
    assert len(once) == 4 and all(np.array_equal(a, b) for a, b in zip(once, every_batch)), \
        "encoding the light map once per generation changed the images"
