"""Draw docs/keep_the_scene.png, the output-modes page's before/after figure for the output modes and colour
preservation, from synthetic images through the extension's own functions (no model involved).

    python tools/keep_the_scene_figure.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iclight_a1111.images.color_preservation import preserve_color  # noqa: E402
from iclight_a1111.images.composite import background_shading, on_grey, over_picture, transparent  # noqa: E402
from iclight_a1111.images.light_maps import fc_light_map  # noqa: E402

SIZE = 128
WARM = np.array([1.0, 0.62, 0.35])  # the new light's colour


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A picture (sky, ground, a figure in flat daylight with a bright rim of that light), the figure's
    own colours and its alpha."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    sky = np.stack([90 + yy * 0.5, 140 + yy * 0.5, np.full_like(yy, 220)], axis=-1)
    ground = np.stack([70 + 0 * yy, 110 - (yy - 90) * 0.3, 60 + 0 * yy], axis=-1)
    picture = np.where((yy > 90)[..., None], ground, sky)
    head = np.hypot(xx - 64, yy - 44) - 16
    body = np.maximum(np.abs(xx - 64) - 22, np.abs(yy - 92) - 34)
    distance = np.minimum(head, body)
    alpha = np.clip(0.5 - distance / 2, 0, 1)
    stripes = (np.sin(xx / 3) > 0)[..., None] * 25
    figure = np.array([60, 150, 170]) + stripes
    picture = picture * (1 - alpha[..., None]) + figure * alpha[..., None]
    picture[(distance > -3) & (distance < 1)] = 250  # the old light's rim
    alpha8 = (alpha * 255).round().astype(np.uint8)
    figure = np.broadcast_to(figure, picture.shape).round().clip(0, 255).astype(np.uint8)
    return picture.round().clip(0, 255).astype(np.uint8), figure, alpha8


def simulated_relight(figure: np.ndarray, alpha: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Stands in for a generation: the figure shaded by the light map in a warm colour, on the grey backdrop."""
    shade = 0.15 + 1.4 * light[..., :1].astype(np.float32) / 255
    lit = figure.astype(np.float32) * shade * WARM
    return on_grey(np.dstack([lit.round().clip(0, 255).astype(np.uint8), alpha]))


def checkerboard(rgba: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    board = np.where((((yy // 8) + (xx // 8)) % 2 == 0)[..., None], 200, 150).astype(np.float32)
    a = rgba[..., 3:].astype(np.float32) / 255
    return (rgba[..., :3] * a + board * (1 - a)).round().astype(np.uint8)


def main() -> None:
    picture, figure, alpha8 = scene()
    alpha = alpha8.astype(np.float32) / 255
    light = fc_light_map("Left", SIZE, SIZE, (255,) * 3, (0,) * 3, 1.0)
    relit = simulated_relight(figure, alpha8, light)
    panels = [
        ("picture given", picture),
        ("relit (Generated)", relit),
        ("Original background", over_picture(relit, alpha, picture)),
        ("+ light the bg 0.7", over_picture(relit, alpha, picture, background_shading(light, 0.7))),
        ("+ preserve color 1", over_picture(preserve_color(relit, picture, alpha, 1.0), alpha, picture,
                                            background_shading(light, 0.7))),
        ("Transparent", checkerboard(transparent(relit, alpha8))),
    ]
    figure = Image.new("RGB", (SIZE * len(panels), SIZE + 16), "white")
    draw = ImageDraw.Draw(figure)
    for i, (label, image) in enumerate(panels):
        figure.paste(Image.fromarray(image), (i * SIZE, 16))
        draw.text((i * SIZE + 3, 2), label, fill="black")
    out = ROOT / "docs" / "keep_the_scene.png"
    figure.save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
