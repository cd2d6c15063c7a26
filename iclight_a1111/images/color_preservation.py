"""Keep the subject's own colours under a coloured light: the relit luminance, the subject's chroma.

Works in YCbCr (JPEG's full-range BT.601): Y is the luminance, Cb and Cr the chroma. At strength
s the chroma moves from the relit image's towards the subject's by s, inside the subject's alpha;
the luminance stays the relit one (up to clipping into 0..255).
"""
from __future__ import annotations

import numpy as np

TO_YCBCR = np.array([
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
], np.float64)
TO_RGB = np.linalg.inv(TO_YCBCR)


def to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8 or float RGB (HxWx3) -> float64 Y, Cb, Cr (chroma centred on 0)."""
    return rgb.astype(np.float64) @ TO_YCBCR.T


def to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    return (ycbcr @ TO_RGB.T).round().clip(0, 255).astype(np.uint8)


def preserve_color(relit: np.ndarray, subject: np.ndarray, alpha: np.ndarray | None, strength: float) -> np.ndarray:
    """`relit` (uint8 HxWx3) with its chroma moved towards `subject`'s (same size) by `strength`
    (0..1) where `alpha` (0..1, HxW; None: everywhere) marks the subject."""
    if strength <= 0:
        return relit
    ours, theirs = to_ycbcr(relit), to_ycbcr(subject)
    weight = strength * (np.ones(relit.shape[:2]) if alpha is None else alpha.astype(np.float64))
    ours[..., 1:] += (theirs[..., 1:] - ours[..., 1:]) * weight[..., None]
    return to_rgb(ours)
