"""The parameter schema as JSON Schema, for the OpenAPI description of the endpoints: what a client may
send, from the same `PARAMS` that check it (a schema-driven fuzzer generates requests from it)."""
from __future__ import annotations

from typing import Any

from ..images.image_decoding import ACCEPTED, MAX_FILE_BYTES, MAX_IMAGE_PIXELS
from ..images.placed_lights import FIELDS, MAX_INTENSITY, MAX_LIGHT_TEXT, MAX_LIGHTS
from ..unet.model_files import MAX_FILE_NAME
from .params import Param

COLOR = {"type": "string", "pattern": "^#?[0-9a-fA-F]{6}$", "example": "#ffaa00"}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
LIGHT = {
    "type": "object",
    "properties": {"x": FRACTION, "y": FRACTION,
                   "radius": {"type": "number", "minimum": 0, "description": "greater than 0: a fraction of the shorter side"},
                   "color": COLOR, "intensity": {"type": "number", "minimum": 0, "maximum": MAX_INTENSITY}},
    "required": ["x", "y"],
    "additionalProperties": False,
}
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8URHAgA0wMeAAg1MCADzvAaAsB0NhAAAAAElFTkSuQmCC"
IMAGE = {
    "type": "string",
    "example": EXAMPLE_PNG,
    "description": f"base64 {ACCEPTED} (a data URL too; line breaks allowed), at most {MAX_FILE_BYTES // 2**20} MiB "
                   f"and {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels",
}


def value_schema(param: Param) -> dict[str, Any]:
    """What `values.coerce` accepts for `param`, in its canonical form."""
    if param.kind == "bool":
        return {"type": "boolean"}
    if param.kind == "choice":
        return {"type": "string", "enum": list(param.choices)}
    if param.kind == "text":
        return {"type": "string", "maxLength": MAX_FILE_NAME}
    if param.kind == "color":
        return dict(COLOR)
    if param.kind == "number":
        kind = "integer" if isinstance(param.default, int) else "number"
        return {"type": kind, "minimum": param.minimum, "maximum": param.maximum}
    if param.kind == "lights":
        lights = {"type": "array", "maxItems": MAX_LIGHTS, "items": LIGHT}
        compact = {"type": "string", "maxLength": MAX_LIGHTS * MAX_LIGHT_TEXT,
                   "description": f"'{','.join(FIELDS)}' per light, ';' between lights"}
        return {"anyOf": [lights, compact]}
    return dict(IMAGE)


def param_schema(param: Param) -> dict[str, Any]:
    """`value_schema` with the parameter's help and default."""
    schema = {**value_schema(param), "description": param.help or param.label}
    if param.kind not in ("image", "lights"):
        schema["default"] = param.default
    return schema
