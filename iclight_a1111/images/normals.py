"""A normal map from four relights of one subject (lit from the left, right, bottom and top).

Each relight is divided by their mean (the ambient part); half the left/right and the bottom/top
differences, averaged over RGB, are the normal's x and y; z is `clip(1 - x^2 - y^2, 0) ** (sigma / 2)`
(1 for sigma 0); the vector is normalised. x points right, y up, z towards the viewer. The IC-Light
paper shows normals recovered this way although the model never saw normal data.
"""
from __future__ import annotations

import numpy as np

NORMAL_LIGHTS = ("Left", "Right", "Bottom", "Top")
EPSILON = 1e-6


def normals_from_relights(left: np.ndarray, right: np.ndarray, bottom: np.ndarray, top: np.ndarray,
                          alpha: np.ndarray | None = None, sigma: float = 0.0) -> np.ndarray:
    """Unit normals (HxWx3, float) from four HxWx3 relights; (0, 0, 1) where `alpha` (0..1) is below 0.5."""
    lights = [np.asarray(i, dtype=np.float64) for i in (left, right, bottom, top)]
    ambient = sum(lights) / 4 + EPSILON
    left, right, bottom, top = (i / ambient for i in lights)
    u = ((right - left) / 2).mean(axis=2)
    v = ((top - bottom) / 2).mean(axis=2)
    h = np.clip(1 - u ** 2 - v ** 2, 0, None) ** (sigma / 2)
    normals = np.stack([u, v, h], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + EPSILON
    if alpha is not None:
        normals[alpha < 0.5] = (0.0, 0.0, 1.0)
    return normals


def normal_map_image(normals: np.ndarray) -> np.ndarray:
    """Unit normals as an RGB image, each component mapped from -1..1 to 0..255."""
    return ((normals + 1) / 2 * 255).round().clip(0, 255).astype(np.uint8)
