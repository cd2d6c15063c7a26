"""A relit result put back into a picture, or cut out with its alpha.

The relit image's edge pixels mix the subject with what the model drew around it (the grey
backdrop, a new scene), and the picture's edge pixels mix its background with the subject under the
old light. Blending those two by alpha would leave a halo of both. So each side is first extended
across the edge from where it is pure: the subject's colour from where its alpha is 1, the
background from where its alpha is 0 (`background_fill`), and the edge is their alpha blend.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .background_fill import fill_from_surroundings
from .vae_encoding import composite_on_grey


def subject_colour(relit: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The relit subject's colour everywhere (float32): the result where the alpha is full, carried
    outwards from there across the edge."""
    core = alpha >= 1.0
    if not core.any():
        core = alpha >= alpha.max() if alpha.max() > 0 else core
    return fill_from_surroundings(relit, core)


def background_shading(light_map: np.ndarray, strength: float) -> np.ndarray:
    """Per-pixel gain (HxWx1) that shades a background by a light map's luminance: 1 at strength 0;
    at strength 1 the map's brightest point keeps the background and its black goes to black."""
    luminance = light_map.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    normalised = luminance / max(float(luminance.max()), 1e-6)
    return (1.0 - strength + strength * normalised)[..., None]


def over_picture(relit: np.ndarray, alpha: np.ndarray, picture: np.ndarray, shading: np.ndarray | None = None) -> np.ndarray:
    """The relit subject (uint8 HxWx3) over the picture by `alpha` (0..1, HxW): exactly the relit
    image where alpha is 1, exactly the (shaded) picture where it is 0, no halo in between."""
    background = fill_from_surroundings(picture, alpha <= 0)
    if shading is not None:
        background = background * shading
    a = alpha.astype(np.float32)[..., None]
    mixed = subject_colour(relit, alpha) * a + background * (1 - a)
    return mixed.round().clip(0, 255).astype(np.uint8)


def transparent(relit: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA: the relit subject's colour (edges free of the backdrop) with `alpha` (uint8 HxW) as is."""
    colour = subject_colour(relit, alpha.astype(np.float32) / 255.0).round().clip(0, 255).astype(np.uint8)
    return np.dstack([colour, alpha])


def on_grey(rgba: np.ndarray) -> np.ndarray:
    """An RGBA image flattened on the reference's grey by its alpha."""
    return composite_on_grey(rgba[..., :3], rgba[..., 3].astype(np.float32) / 255.0)


def flatten_on(image: np.ndarray, colour: str) -> np.ndarray:
    """RGB as is; RGBA pasted by its alpha onto `colour` (as A1111 flattens img2img pictures)."""
    if image.shape[2] != 4:
        return image
    background = Image.new("RGBA", image.shape[1::-1], colour)
    rgba = Image.fromarray(image)
    background.paste(rgba, mask=rgba)
    return np.array(background.convert("RGB"))
