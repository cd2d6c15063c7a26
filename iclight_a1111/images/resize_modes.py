"""Where a picture's pixels land in the output: A1111's img2img *Resize mode* and the reference's crop.

In img2img A1111 fits its picture and mask to the output size with `images.resize_image(p.resize_mode,
...)` (v1.10.1 `modules/images.py`, `processing.py` ~1657 and ~1679). Everything IC-Light lays over or
beside that picture (the subject condition, light maps, alphas, composites) must land on the same
pixels, so `Layout` reproduces each mode here, without importing A1111:

- 0 *Just resize*: stretched to the output size (LANCZOS).
- 1 *Crop and resize*: scaled to cover the output, centred, the overflow cut off.
- 2 *Resize and fill*: scaled to fit inside, centred, the empty bands filled by stretching the
  picture's outermost row or column.
- 3 *Just resize (latent upscale)*: A1111 stretches the picture's latent; in pixels, a stretch.

txt2img has no A1111 picture: there the reference's resize-and-centre-crop applies (`REFERENCE`).
A1111 enlarges with the *Upscaler for img2img* when one is set; the layout (which pixel goes where)
is the same, only the interpolation differs.

Covering the output scales the image by the larger of the two side ratios: an image far from the
output's aspect ratio (a 40000x10 strip fitted to 1024x1024) would become gigapixels on the way. Every
fit is bounded by the largest image it makes (`MAX_FITTED_PIXELS`) and refused, naming the image,
before anything is resized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import IcLightError
from .image_decoding import label
from .vae_encoding import cover_size, resize_and_center_crop

MAX_FITTED_PIXELS = 8192 * 8192  # the largest image fitting one to an output may make on the way
JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL, LATENT_UPSCALE = 0, 1, 2, 3
RESIZE_MODES = (JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL, LATENT_UPSCALE)


def resize_like_img2img(image: np.ndarray, mode: int, width: int, height: int) -> np.ndarray:
    """uint8 HxW or HxWxC `image` fitted to width x height as A1111's img2img resize mode `mode` fits it."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown img2img resize mode {mode!r}")
    pil = Image.fromarray(image)
    if mode in (JUST_RESIZE, LATENT_UPSCALE):
        return np.array(pil.resize((width, height), resample=Image.LANCZOS))
    scaled_w, scaled_h = kept_aspect_size(pil.width, pil.height, mode, width, height)
    scaled = pil.resize((scaled_w, scaled_h), resample=Image.LANCZOS)
    canvas = Image.new(pil.mode, (width, height))
    left, top = width // 2 - scaled_w // 2, height // 2 - scaled_h // 2
    canvas.paste(scaled, box=(left, top))
    if mode == RESIZE_AND_FILL:
        aspect = pil.width / pil.height
        fill_edges(canvas, scaled, left, top, width / height < aspect, width / height > aspect)
    return np.array(canvas)


def kept_aspect_size(w: int, h: int, mode: int, width: int, height: int) -> tuple[int, int]:
    """The size *Crop and resize* (covering width x height) or *Resize and fill* (inside it) scales a w x h
    image to: one side takes the output's length, the other keeps the aspect (integer division, as A1111)."""
    wider_output, taller_output = width / height > w / h, width / height < w / h
    match_width = wider_output if mode == CROP_AND_RESIZE else taller_output
    return (width, h * width // w) if match_width else (w * height // h, height)


def fill_edges(canvas: Image.Image, scaled: Image.Image, left: int, top: int, bands_above: bool, bands_beside: bool) -> None:
    """Resize and fill's bands: the picture's first and last row (or column) stretched across each band.
    The far band is as wide as the near one, so an odd remainder stays black, as in A1111."""
    width, height = canvas.size
    if bands_above and top > 0:
        first = scaled.resize((width, top), box=(0, 0, width, 0))
        last = scaled.resize((width, top), box=(0, scaled.height, width, scaled.height))
        canvas.paste(first, box=(0, 0))
        canvas.paste(last, box=(0, top + scaled.height))
    elif bands_beside and left > 0:
        first = scaled.resize((left, height), box=(0, 0, 0, height))
        last = scaled.resize((left, height), box=(scaled.width, 0, scaled.width, height))
        canvas.paste(first, box=(0, 0))
        canvas.paste(last, box=(left + scaled.width, 0))


@dataclass(frozen=True)
class Layout:
    """How a generation's images are fitted to an output size: an img2img resize mode, or None for the
    reference's resize-and-centre-crop (txt2img)."""

    resize_mode: int | None = None

    def scaled_size(self, size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
        """The size an image of `size` (width, height) is scaled to on its way to width x height: larger
        than the output where it is covered and cut (the reference's crop, *Crop and resize*)."""
        if self.resize_mode is None:
            return cover_size(*size, width, height)
        if self.resize_mode == CROP_AND_RESIZE:
            return kept_aspect_size(*size, CROP_AND_RESIZE, width, height)
        return width, height  # stretched, or fitted inside and filled

    def check_fit(self, size: tuple[int, int], width: int, height: int, field: str = "an image") -> None:
        """Refuse, naming `field`, an image whose fitting to width x height would make more than
        `MAX_FITTED_PIXELS` pixels on the way."""
        scaled_w, scaled_h = self.scaled_size(size, width, height)
        if scaled_w * scaled_h > MAX_FITTED_PIXELS:
            name = label(field)
            raise IcLightError(
                f"{name[:1].upper() + name[1:]} ({size[0]}x{size[1]}) would be scaled to {scaled_w}x{scaled_h} to "
                f"cover the {width}x{height} output ({scaled_w * scaled_h / 1e6:.0f} megapixels; at most "
                f"{MAX_FITTED_PIXELS / 1e6:.1f} are allowed): crop it closer to the output's aspect ratio."
            )

    def fit(self, image: np.ndarray, width: int, height: int, field: str = "an image") -> np.ndarray:
        """A uint8 image (HxW or HxWxC) at width x height; `field` names it in a refusal."""
        self.check_fit((image.shape[1], image.shape[0]), width, height, field)
        if self.resize_mode is None:
            if image.ndim == 2:
                return resize_and_center_crop(np.repeat(image[..., None], 3, axis=2), width, height)[..., 0]
            return resize_and_center_crop(image, width, height)
        return resize_like_img2img(image, self.resize_mode, width, height)

    def fit_alpha(self, alpha: np.ndarray | None, width: int, height: int) -> np.ndarray | None:
        """An alpha (0..1 float, HxW) fitted like the images, through 8 bits as an image would be; None stays None."""
        if alpha is None:
            return None
        return self.fit((alpha * 255).round().astype(np.uint8), width, height, "the subject's alpha").astype(np.float32) / 255.0


REFERENCE = Layout(None)


def img2img_layout(resize_mode: object) -> Layout:
    """The layout of an img2img resize mode as A1111 reads it (`images.resize_image`): 0, 1 and 3 are
    themselves; any other value takes its last branch, Resize and fill."""
    kept = (JUST_RESIZE, CROP_AND_RESIZE, LATENT_UPSCALE)
    return Layout(int(resize_mode) if resize_mode in kept else RESIZE_AND_FILL)
