"""Light maps as the IC-Light reference draws them (uint8 HxWx3).

fc: the light map is the initial image of an img2img pass (bright side 255, dark side 0, or flat 127
for ambient). fbc: the gradient is the background condition itself, in the softer 224..32 range
(flat 64 for ambient).
"""
from __future__ import annotations

import numpy as np

DIRECTIONS = ("Left", "Right", "Top", "Bottom")
FC_RANGE, FC_AMBIENT = (255, 0), 127
FBC_RANGE, FBC_AMBIENT = (224, 32), 64


def gradient(direction: str, width: int, height: int, bright: int, dark: int) -> np.ndarray:
    """Brightest at the `direction` edge, falling linearly to `dark` at the opposite one."""
    if direction in ("Left", "Right"):
        ramp = np.linspace(bright, dark, width) if direction == "Left" else np.linspace(dark, bright, width)
        plane = np.tile(ramp, (height, 1))
    elif direction in ("Top", "Bottom"):
        ramp = np.linspace(bright, dark, height) if direction == "Top" else np.linspace(dark, bright, height)
        plane = np.tile(ramp[:, None], (1, width))
    else:
        raise ValueError(f"unknown light direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
    return np.stack((plane,) * 3, axis=-1).astype(np.uint8)


def flat(width: int, height: int, level: int) -> np.ndarray:
    return np.full((height, width, 3), level, dtype=np.uint8)


def fc_light_map(light: str, width: int, height: int) -> np.ndarray:
    """The fc initial image for a preset: a direction or 'Ambient'."""
    if light == "Ambient":
        return flat(width, height, FC_AMBIENT)
    return gradient(light, width, height, *FC_RANGE)


def fbc_background(light: str, width: int, height: int) -> np.ndarray:
    """The fbc background condition for a preset: a direction or 'Ambient'."""
    if light == "Ambient":
        return flat(width, height, FBC_AMBIENT)
    return gradient(light, width, height, *FBC_RANGE)
