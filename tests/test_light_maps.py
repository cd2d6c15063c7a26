"""Light maps pixel-identical to the reference demo's formulas, at odd sizes."""
import numpy as np
import pytest
from PIL import Image

from iclight_a1111.images.light_maps import fbc_background, fc_light_map


def reference(direction, width, height, bright, dark):
    """The reference demos: linspace along the axis, tiled, stacked to RGB, cast to uint8."""
    if direction in ("Left", "Right"):
        ramp = np.linspace(bright, dark, width) if direction == "Left" else np.linspace(dark, bright, width)
        image = np.tile(ramp, (height, 1))
    else:
        ramp = np.linspace(bright, dark, height) if direction == "Top" else np.linspace(dark, bright, height)
        image = np.tile(ramp[:, None], (1, width))
    return np.stack((image,) * 3, axis=-1).astype(np.uint8)


@pytest.mark.parametrize("direction", ["Left", "Right", "Top", "Bottom"])
@pytest.mark.parametrize("size", [(513, 771), (512, 640), (1, 3)])
def test_presets_equal_reference_pixels(direction, size):
    assert np.array_equal(fc_light_map(direction, *size), reference(direction, *size, 255, 0))
    assert np.array_equal(fbc_background(direction, *size), reference(direction, *size, 224, 32))


def test_ambient_is_flat_grey():
    assert (fc_light_map("Ambient", 9, 5) == 127).all() and fc_light_map("Ambient", 9, 5).shape == (5, 9, 3)
    assert (fbc_background("Ambient", 9, 5) == 64).all()


@pytest.mark.parametrize("corner,lit_at,dark_at", [
    ("Top Left", (0, 0), (-1, -1)), ("Top Right", (0, -1), (-1, 0)),
    ("Bottom Left", (-1, 0), (0, -1)), ("Bottom Right", (-1, -1), (0, 0)),
])
def test_diagonal_lights_run_from_the_lit_corner_to_the_opposite_one(corner, lit_at, dark_at):
    image = fc_light_map(corner, 101, 61).astype(int)[..., 0]
    assert image[lit_at] == 255 and image[dark_at] == 0
    diagonal = [image[round(i * 60 / 100) if lit_at[0] == 0 else 60 - round(i * 60 / 100),
                      i if lit_at[1] == 0 else 100 - i] for i in range(101)]
    assert all(a >= b for a, b in zip(diagonal, diagonal[1:])), f"{corner}: not falling away from the lit corner"


def test_colors_set_the_lit_and_dark_ends():
    image = fc_light_map("Right", 64, 8, lit=(255, 170, 0), dark=(0, 0, 80))
    assert tuple(image[3, -1]) == (255, 170, 0) and tuple(image[3, 0]) == (0, 0, 80)


def test_falloff_above_one_keeps_light_near_its_edge_and_one_is_linear():
    linear = fc_light_map("Left", 101, 4)[0, :, 0].astype(int)
    steep = fc_light_map("Left", 101, 4, falloff=2.0)[0, :, 0].astype(int)
    soft = fc_light_map("Left", 101, 4, falloff=0.5)[0, :, 0].astype(int)
    assert steep[0] == linear[0] == 255 and steep[-1] == linear[-1] == 0
    assert steep[50] < linear[50] < soft[50], "falloff does not shape the ramp as documented"
    assert steep[50] == int(255 * 0.5 ** 2)


def test_default_color_and_falloff_keep_reference_pixels():
    assert np.array_equal(fc_light_map("Top", 513, 771, (255,) * 3, (0,) * 3, 1.0), reference("Top", 513, 771, 255, 0))


@pytest.mark.parametrize("resize_mode", [0, 1, 2])
def test_custom_light_map_upload_is_flattened_and_fitted_by_the_img2img_resize_mode(a1111, resize_mode):
    from modules import images, processing

    from generation_harness import img2img, pil, subject
    from iclight_a1111.images.vae_encoding import composite_on_grey

    rng = np.random.default_rng(5)
    upload = rng.integers(0, 256, (90, 150, 4), dtype=np.uint8)
    p = img2img([{"enabled": True, "light": "Custom", "light_map": upload, "extra_outputs": True}], [pil(subject(64))],
                steps=2, denoising_strength=0.9, resize_mode=resize_mode, width=128, height=64)
    used = np.array(processing.process_images(p).images[2])
    flat = Image.fromarray(composite_on_grey(upload[..., :3], upload[..., 3] / 255.0))
    expected = np.array(images.resize_image(resize_mode, flat, 128, 64))
    assert np.array_equal(used, expected), f"the custom light map was not fitted like A1111's picture (mode {resize_mode})"
