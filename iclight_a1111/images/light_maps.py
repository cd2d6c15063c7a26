"""Light maps (uint8 HxWx3): the IC-Light reference presets, and what the extension adds to them.

fc: the light map is the initial image of an img2img pass (bright side 255, dark side 0, or flat 127
for ambient). fbc: the gradient is the background condition itself, in the softer 224..32 range
(flat 64 for ambient). Added for fc: diagonal lights, a colour for the lit and for the dark end, and
a falloff exponent (t ** falloff along the ramp, t = 1 at the lit edge); the defaults (white,
black, 1) give the reference's pixels exactly.
"""
from __future__ import annotations

import numpy as np

from .placed_lights import parse_color  # noqa: F401 (the colour format of every light map)

DIRECTIONS = ("Left", "Right", "Top", "Bottom")
DIAGONALS = ("Top Left", "Top Right", "Bottom Left", "Bottom Right")
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
FC_RANGE, FC_AMBIENT = (255, 0), 127
FBC_RANGE, FBC_AMBIENT = (224, 32), 64


def gradient(direction: str, width: int, height: int, bright: int, dark: int) -> np.ndarray:
    """Brightest at the `direction` edge, falling linearly to `dark` at the opposite one (the reference)."""
    return colored_gradient(direction, width, height, (bright,) * 3, (dark,) * 3, 1.0)


def colored_gradient(direction: str, width: int, height: int, lit: tuple[int, int, int],
                     dark: tuple[int, int, int], falloff: float) -> np.ndarray:
    """From `lit` at the `direction` edge (or corner) to `dark` at the opposite one, shaped by `falloff`."""
    if direction in DIRECTIONS:
        along_x = direction in ("Left", "Right")
        n = width if along_x else height
        lit_first = direction in ("Left", "Top")
        if falloff == 1.0:
            # The reference's own formula, so the default presets are pixel-identical to it.
            ramps = [np.linspace(l, d, n) if lit_first else np.linspace(d, l, n) for l, d in zip(lit, dark)]
        else:
            t = np.linspace(1.0, 0.0, n) if lit_first else np.linspace(0.0, 1.0, n)
            ramps = [d + (l - d) * t ** falloff for l, d in zip(lit, dark)]
        planes = [np.tile(r, (height, 1)) if along_x else np.tile(r[:, None], (1, width)) for r in ramps]
        return np.stack(planes, axis=-1).astype(np.uint8)
    if direction in DIAGONALS:
        x = np.linspace(0.0, 1.0, width)[None, :]
        y = np.linspace(0.0, 1.0, height)[:, None]
        x = 1.0 - x if "Left" in direction else x
        y = 1.0 - y if "Top" in direction else y
        t = ((x + y) / 2.0) ** falloff
        return np.stack([d + (l - d) * t for l, d in zip(lit, dark)], axis=-1).astype(np.uint8)
    raise ValueError(f"unknown light direction {direction!r}; expected one of {', '.join(DIRECTIONS + DIAGONALS)}")


def flat(width: int, height: int, level: int) -> np.ndarray:
    return np.full((height, width, 3), level, dtype=np.uint8)


def fc_light_map(light: str, width: int, height: int, lit: tuple[int, int, int] = WHITE,
                 dark: tuple[int, int, int] = BLACK, falloff: float = 1.0) -> np.ndarray:
    """The fc initial image for a preset: a direction, a diagonal, or 'Ambient'."""
    if light == "Ambient":
        return flat(width, height, FC_AMBIENT)
    return colored_gradient(light, width, height, lit, dark, falloff)


def fbc_background(light: str, width: int, height: int) -> np.ndarray:
    """The fbc background condition for a preset: a direction or 'Ambient'."""
    if light == "Ambient":
        return flat(width, height, FBC_AMBIENT)
    return gradient(light, width, height, *FBC_RANGE)
