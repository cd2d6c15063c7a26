"""The one decoder of every image IC-Light is given: foreground, background, light map, the img2img
picture, the endpoints' images.

What a client sends (base64, with or without line breaks, or a data URL) is hostile until checked:
its length bounds the file, its first bytes name the format, and only PNG, JPEG and WebP are opened,
each by its own Pillow plugin, whose header gives the size that bounds the pixels before anything is
decoded. Other containers (ICO, TIFF, PSD...) can hold an image larger than their header says, and
are refused by name. EXIF orientation is applied as A1111 applies it to its init images
(`modules/images.py` `fix_image`). What A1111 or gradio already decoded (a PIL image, a numpy array)
was sized by them: it is taken as it is, whatever its size.
"""
from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageOps

from ..errors import IcLightError, ImageTooLarge

# The largest image file read (about 100 MB; an 8192x8192 photo as PNG is less) and the most pixels
# decoded from one: 8192 x 8192, read from the file's header, so a small file declaring a huge image
# is refused before its pixels exist. PIL's own guard is off once the X/Y/Z plot has drawn a grid.
MAX_FILE_BYTES = 100 * 2**20
MAX_IMAGE_PIXELS = 8192 * 8192
ACCEPTED = "PNG, JPEG or WebP"
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))  # WebP: RIFF....WEBP
REFUSED_SIGNATURES = (
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"), (b"8BPS", "PSD"), (b"%PDF", "PDF"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"icns", "ICNS"),
    (b"gimp xcf", "XCF"), (b"\x76\x2f\x31\x01", "OpenEXR"), (b"#?RADIANCE", "HDR"), (b"\x01\xda", "SGI"),
    (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"P1", "PBM"), (b"P2", "PGM"), (b"P3", "PPM"),
    (b"P4", "PBM"), (b"P5", "PGM"), (b"P6", "PPM"), (b"P7", "PAM"), (b"\x0a\x05\x01\x08", "PCX"),
    (b"BLP", "BLP"), (b"FORM", "IFF"),
)
WHITESPACE = {ord(c): None for c in " \t\r\n\v\f"}


def label(field: str) -> str:
    """How a message names a field: IC-Light's own arguments by their key; anything else as given."""
    return field if " " in field else f"IC-Light '{field}'"


def decode_image(value: Any, field: str) -> np.ndarray | None:
    """`value` as a uint8 HxWx3 (RGB) or HxWx4 (RGBA) array; None when no image is given.

    Accepts None or an empty string (no image), gradio's {'image': ...} dict, a PIL image or numpy
    array (already decoded by A1111 or gradio), or base64 text, optionally a data URL. Any other value,
    and any image refused, raise an `IcLightError` naming `field` (413 when it is too large)."""
    if isinstance(value, Mapping):
        value = value.get("image")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = read_image(file_bytes(value, field), field)
    if isinstance(value, Image.Image):
        return pixels(value, field)
    if isinstance(value, np.ndarray):
        return array_pixels(value, field)
    raise IcLightError(f"{label(field)} must be an image ({ACCEPTED} as base64), got {type(value).__name__}.")


def file_bytes(text: str, field: str) -> bytes:
    """The file in base64 `text` (line breaks and a `data:image/...;base64,` prefix allowed), its
    length checked before it is decoded."""
    data = text.strip()
    if data.startswith("data:"):
        data = data.partition(",")[2]
    if len(data) > (MAX_FILE_BYTES + 2) // 3 * 4 * 1.05:  # line breaks may add a few percent
        raise ImageTooLarge(file_refusal(field, len(data) * 3 // 4))
    data = data.translate(WHITESPACE)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise IcLightError(f"{label(field)}: the string is not valid base64 image data.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ImageTooLarge(file_refusal(field, len(raw)))
    return raw


def image_format(raw: bytes, field: str) -> str:
    """The format named by the file's first bytes; a refusal naming any other format."""
    for signature, name in SIGNATURES:
        if raw.startswith(signature):
            return name
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    refused = next((name for signature, name in REFUSED_SIGNATURES if raw.startswith(signature)), None)
    if refused is None and raw[4:8] == b"ftyp":
        refused = "HEIF/AVIF"
    if refused is not None:
        raise IcLightError(f"{label(field)} is in {refused} format; only {ACCEPTED} images are accepted: save it as PNG.")
    raise IcLightError(f"{label(field)}: the data is not an image ({ACCEPTED} expected).")


def read_image(raw: bytes, field: str) -> Image.Image:
    """The image in `raw`, opened by the plugin of its own format, its size checked from the header
    before its pixels are decoded, then turned upright by its EXIF orientation."""
    name = image_format(raw, field)
    try:
        image = Image.open(io.BytesIO(raw), formats=[name])
        check_size(image.width, image.height, field)
        image.load()
    except Image.DecompressionBombError:  # PIL's guard, at twice its own limit, found it first
        raise ImageTooLarge(size_refusal(field, "too large to decode safely")) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, ZeroDivisionError):
        # Pillow's plugins meet broken files with many exception types; none is the server's fault.
        raise IcLightError(f"{label(field)}: the data is not a readable {name} image (damaged or cut short).") from None
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # as A1111: an unreadable orientation leaves the image as stored
        return image


def check_size(width: int, height: int, field: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(size_refusal(field, f"{width}x{height} pixels"))


def pixels(image: Image.Image, field: str) -> np.ndarray:
    """A PIL image as RGBA when it has transparency (an alpha band, or a palette), else RGB."""
    mode = "RGBA" if "A" in image.getbands() or image.mode in ("P", "PA") else "RGB"
    try:
        return array_pixels(np.asarray(image.convert(mode)), field)
    except (ValueError, OSError) as e:
        raise IcLightError(f"{label(field)} has pixels of a kind IC-Light cannot read ({image.mode}: {e}).") from None


def array_pixels(array: np.ndarray, field: str) -> np.ndarray:
    """A decoded image as uint8 HxWx3 or HxWx4 (greyscale repeated into RGB)."""
    if array.ndim == 2:
        array = np.stack((array,) * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) == 0:
        raise IcLightError(f"{label(field)} has shape {array.shape}; an RGB or RGBA image is needed.")
    if array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise IcLightError(f"{label(field)} has pixels of type {array.dtype}; an 8-bit image is needed.")
        array = np.nan_to_num(array).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def file_refusal(field: str, nbytes: int) -> str:
    return (f"{label(field)} is a file of {nbytes / 2**20:.0f} MiB; at most {MAX_FILE_BYTES // 2**20} MiB are accepted: "
            "scale the image down or save it as JPEG.")


def size_refusal(field: str, size: str) -> str:
    return (f"{label(field)} is {size}; at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (8192x8192) are accepted: "
            f"scale the image down first (the generation resizes it to the output size anyway).")
