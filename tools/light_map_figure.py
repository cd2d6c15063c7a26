"""Draws the README's figure of the light maps with the extension's own code: presets, colours,
falloff and placed lights, each at 512x640's aspect ratio, labelled.

    python -m tools.light_map_figure docs/light-maps.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from iclight_a1111.generation.light_map import light_map_image
from iclight_a1111.generation.params import defaults
from iclight_a1111.images.placed_lights import parse_lights

TILE = (128, 160)  # 512x640 at a quarter
LABEL_HEIGHT = 28
COLUMNS = 5
TILES = (
    ("Left", {"light": "Left"}),
    ("Top Right", {"light": "Top Right"}),
    ("Ambient", {"light": "Ambient"}),
    ("Left, warm / blue", {"light": "Left", "light_color": "#ffb060", "shadow_color": "#101838"}),
    ("Bottom, falloff 3", {"light": "Bottom", "falloff": 3.0}),
    ("Placed: frontal", {"light": "Placed", "lights": "0.5,0.45,0.7,#ffffff,1"}),
    ("Placed: two colours", {"light": "Placed", "lights": "0.15,0.3,0.6,#ff9040,1;0.9,0.7,0.5,#4080ff,1"}),
    ("Placed: falloff 0.5", {"light": "Placed", "lights": "0.5,0.45,0.5,#ffffff,1", "falloff": 0.5}),
    ("Placed: falloff 2", {"light": "Placed", "lights": "0.5,0.45,0.5,#ffffff,1", "falloff": 2.0}),
    ("Placed: rim + shadow", {"light": "Placed", "lights": "0.02,0.3,0.45,#ffffff,1;0.98,0.3,0.45,#ffd0a0,1",
                              "shadow_color": "#202020"}),
)


def tile(settings: dict) -> np.ndarray:
    values = {**defaults(), **settings}
    values["lights"] = parse_lights(values["lights"])
    return light_map_image(values, *TILE)


def figure() -> Image.Image:
    rows = -(-len(TILES) // COLUMNS)
    width, height = TILE[0], TILE[1] + LABEL_HEIGHT
    canvas = Image.new("RGB", (COLUMNS * width + (COLUMNS + 1) * 4, rows * height + (rows + 1) * 4), "white")
    draw = ImageDraw.Draw(canvas)
    for n, (label, settings) in enumerate(TILES):
        x, y = 4 + (n % COLUMNS) * (width + 4), 4 + (n // COLUMNS) * (height + 4)
        canvas.paste(Image.fromarray(tile(settings)), (x, y))
        draw.text((x + 2, y + TILE[1] + 6), label, fill="black")
    return canvas


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "docs/light-maps.png")
    figure().save(target, optimize=True)
    print(f"{target}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
