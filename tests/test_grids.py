"""Grids of Transparent results: A1111 pastes each result into an RGB grid without its alpha (a
batch's grid and X/Y/Z's both go through `images.image_grid`); a grid cell shows what the PNG
shows over a neutral background, never the colour kept under alpha 0."""
import numpy as np
from PIL import Image

from generation_harness import subject, txt2img
from iclight_a1111.images.composite import on_grey


def test_a_batch_grid_shows_transparent_results_flattened_on_grey(a1111, monkeypatch):
    from modules import processing, shared

    monkeypatch.setattr(shared.opts, "return_grid", True)
    p = txt2img([{"enabled": True, "foreground": subject(alpha=True), "output": "Transparent"}], batch_size=2, steps=2)
    processed = processing.process_images(p)
    grid, results = np.array(processed.images[0]), processed.images[1:3]
    assert all(r.mode == "RGBA" for r in results), "the results themselves lost their alpha"
    for k, result in enumerate(results):
        rgba = np.array(result)
        assert (rgba[..., 3] == 0).any() and (rgba[..., :3][rgba[..., 3] == 0] != 127).any(), \
            "the test needs a result whose colour under alpha 0 is not the grey"
        cell = grid[:, 64 * k:64 * (k + 1)]
        assert np.array_equal(cell, on_grey(rgba)), f"grid cell {k} is not the result flattened on grey"


def test_xyz_and_other_grids_of_transparent_results_are_flattened_and_other_images_left_alone(a1111):
    """X/Y/Z (scripts/xyz_grid.py ~377, ~387) calls `image_grid(images, rows=...)` on each cell's first
    image; an RGBA image IC-Light did not make (A1111's mask composite) is pasted as A1111 pastes it."""
    from modules import images, processing

    p = txt2img([{"enabled": True, "foreground": subject(alpha=True), "output": "Transparent"}], steps=2)
    cell = processing.process_images(p).images[0]
    other = Image.fromarray(np.dstack([np.full((64, 64, 3), 200, np.uint8), np.zeros((64, 64), np.uint8)]))
    grid = np.array(images.image_grid([cell, other], rows=1))
    assert np.array_equal(grid[:, :64], on_grey(np.array(cell))), "X/Y/Z cell shows the colour under alpha 0"
    assert (grid[:, 64:] == 200).all(), "an RGBA image IC-Light did not make was changed in the grid"
