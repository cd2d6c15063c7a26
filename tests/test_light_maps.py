"""Light maps pixel-identical to the reference demo's formulas, at odd sizes."""
import numpy as np
import pytest

from iclight_a1111.light_maps import fbc_background, fc_light_map


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
