"""Parameter values from what A1111, the API or the panel sends: checked and typed by the schema."""
from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import IcLightError
from ..images.light_maps import parse_color
from ..images.placed_lights import parse_lights
from .params import PARAMS, PARAMS_BY_KEY, Param, defaults

# The largest image accepted (foreground, background, light map, remove-background): 8192 x 8192
# pixels. It is checked from the file's header, before the pixels are decoded: a small PNG can
# declare a huge image (13000 x 13000 decodes to gigabytes), and PIL's own guard is off once the
# X/Y/Z plot has drawn a grid (it sets `Image.MAX_IMAGE_PIXELS = None`).
MAX_IMAGE_PIXELS = 8192 * 8192


def values_from_args(args: Sequence[Any]) -> dict[str, Any]:
    """Script args (positional in schema order, or a single dict of named keys) -> checked values."""
    if args and isinstance(args[0], Mapping):
        named = dict(args[0])
        unknown = sorted(set(named) - set(PARAMS_BY_KEY))
        if unknown:
            raise IcLightError(
                f"Unknown IC-Light argument(s): {', '.join(unknown)}. Known: {', '.join(PARAMS_BY_KEY)}."
            )
        # Sending the IC-Light dict asks for IC-Light: `enabled` defaults to true in this form.
        return {**defaults(), "enabled": True, **{k: coerce(PARAMS_BY_KEY[k], v) for k, v in named.items()}}
    if len(args) > len(PARAMS):
        raise IcLightError(f"IC-Light takes {len(PARAMS)} arguments ({', '.join(PARAMS_BY_KEY)}), got {len(args)}.")
    values = defaults()
    for param, value in zip(PARAMS, args):
        values[param.key] = coerce(param, value)
    return values


def coerce(param: Param, value: Any) -> Any:
    """`value` as the type `param` needs, or an `IcLightError` naming the parameter."""
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise IcLightError(f"IC-Light '{param.key}' must be true or false, got {value!r}.")
    if param.kind == "choice":
        match = [c for c in param.choices if isinstance(value, str) and c.lower() == value.strip().lower()]
        if not match:
            raise IcLightError(f"IC-Light '{param.key}' must be one of {', '.join(param.choices)}; got {value!r}.")
        return match[0]
    if param.kind == "text":
        if value is None:
            return param.default
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a string, got {type(value).__name__}.")
        return value.strip()
    if param.kind == "color":
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {value!r}.")
        try:
            return "#%02x%02x%02x" % parse_color(value)
        except ValueError:
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {value!r}.") from None
    if param.kind == "lights":
        return parse_lights(value)
    if param.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {value!r}.")
        try:
            number = type(param.default)(value)
        except ValueError:
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {value!r}.") from None
        if (param.minimum is not None and number < param.minimum) or (param.maximum is not None and number > param.maximum):
            raise IcLightError(f"IC-Light '{param.key}' must be within {param.minimum}..{param.maximum}, got {number}.")
        return number
    return decode_image(value, param.key)


def decode_image(value: Any, name: str) -> np.ndarray | None:
    """None, a numpy array, a PIL image, gradio's {'image': ...} dict, or base64 (optionally a data URL)."""
    if isinstance(value, Mapping):
        value = value.get("image")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        data = value.strip()
        if data.startswith("data:"):
            data = data.partition(",")[2]
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise IcLightError(f"IC-Light '{name}': the string is not valid base64 image data.") from None
        value = open_image(raw, name)
    if isinstance(value, Image.Image):
        check_size(value.width, value.height, name)
        value = np.array(value.convert("RGBA") if "A" in value.getbands() or value.mode == "P" else value.convert("RGB"))
    if not isinstance(value, np.ndarray):
        raise IcLightError(f"IC-Light '{name}' must be an image, got {type(value).__name__}.")
    if value.ndim >= 2:
        check_size(value.shape[1], value.shape[0], name)
    if value.ndim == 2:
        value = np.stack((value,) * 3, axis=-1)
    if value.ndim != 3 or value.shape[2] not in (3, 4) or min(value.shape[:2]) == 0:
        raise IcLightError(f"IC-Light '{name}' has shape {value.shape}; an RGB or RGBA image is needed.")
    return value.astype(np.uint8) if value.dtype != np.uint8 else value


def open_image(raw: bytes, name: str) -> Image.Image:
    """The image in `raw`, its size checked from the header before its pixels are decoded."""
    try:
        image = Image.open(io.BytesIO(raw))
        check_size(image.width, image.height, name)
        image.load()
        return image
    except Image.DecompressionBombError:  # PIL's guard, at twice its own limit, found it first
        raise IcLightError(size_refusal(name, "too large to decode safely")) from None
    except (UnidentifiedImageError, OSError):
        raise IcLightError(f"IC-Light '{name}': the data is not an image (PNG, JPEG or WebP expected).") from None


def check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise IcLightError(size_refusal(name, f"{width}x{height} pixels"))


def size_refusal(name: str, size: str) -> str:
    return (f"IC-Light '{name}' is {size}; at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (8192x8192) are accepted: "
            f"scale the image down first (the generation resizes it to the output size anyway).")
