"""Fill an image's unknown area from its surroundings (a push-pull pyramid, in torch; no opencv).

Each level halves the image, averaging only known pixels (weighted by how much of each cell is
known); going back up, unknown pixels take the coarser level's estimate. Known pixels keep their
values exactly, and a filled pixel is a weighted mean of known pixels only: none of the unknown
area's colours survive in it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fill_from_surroundings(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`image` (HxWxC) with every pixel where `known` (HxW bool) is False filled in from the known
    ones, as float32. With nothing known the image stays as it is."""
    if not known.any():
        return image.astype(np.float32)
    values = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    weights = torch.from_numpy(np.ascontiguousarray(known, dtype=np.float32))[None, None]
    filled = push_pull(values * weights, weights)
    return filled[0].permute(1, 2, 0).numpy()


def push_pull(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weight-premultiplied `values` (1xCxHxW) and coverage `weights` (1x1xHxW, 0..1) -> filled values."""
    height, width = values.shape[-2:]
    if height == 1 and width == 1:
        return values / weights.clamp_min(1e-12)
    pad = (0, width % 2, 0, height % 2)  # zero weight outside the image
    coarse = push_pull(F.avg_pool2d(F.pad(values, pad), 2), F.avg_pool2d(F.pad(weights, pad), 2))
    up = F.interpolate(coarse, size=(height + height % 2, width + width % 2), mode="bilinear", align_corners=False)
    up = up[..., :height, :width]
    return values + (1 - weights) * up


def subject_area(alpha: np.ndarray, margin: int) -> np.ndarray:
    """Where the subject has any alpha, grown by `margin` pixels (HxW bool)."""
    area = torch.from_numpy(np.ascontiguousarray(alpha > 0, dtype=np.float32))[None, None]
    if margin > 0:
        area = F.max_pool2d(area, 2 * margin + 1, stride=1, padding=margin)
    return area[0, 0].numpy() > 0


def background_without_subject(picture: np.ndarray, alpha: np.ndarray, margin: int = 2) -> np.ndarray:
    """The picture with the subject's area (its alpha, grown by `margin` pixels against colour bleeding
    at the edge) filled in from the surroundings, as uint8."""
    known = ~subject_area(alpha, margin)
    return fill_from_surroundings(picture, known).round().clip(0, 255).astype(np.uint8)
