"""The OpenAPI description of the `/iclight/v1/*` endpoints: request bodies from the parameter schema,
answers with their status codes. The routes take a plain dict and check it themselves (so a refusal
names the field as a generation's does); this describes what they accept."""
from __future__ import annotations

from typing import Any

from ..generation.json_schema import IMAGE, param_schema
from ..generation.params import PARAMS_BY_KEY
from ..images.resize_modes import RESIZE_MODES

LIGHT_MAP_KEYS = ("light", "lights", "light_color", "shadow_color", "falloff", "light_map")
MAX_SIDE = 2048  # the light-map endpoint's largest side: the webui's own width and height sliders end there
LIGHT_MAP_ARGUMENTS = (*LIGHT_MAP_KEYS, "width", "height", "resize_mode")
ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "detail": {}, "body": {}, "errors": {}}}
PNG_ANSWER = {"type": "object", "properties": {"image": {"type": "string", "description": "base64 PNG"}}, "required": ["image"]}


def side(name: str, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 8, "maximum": MAX_SIDE, "default": default,
            "description": f"the output's {name} in pixels"}


LIGHT_MAP_REQUEST = {
    "type": "object",
    "properties": {
        **{key: param_schema(PARAMS_BY_KEY[key]) for key in LIGHT_MAP_KEYS},
        "width": side("width", 512),
        "height": side("height", 640),
        "resize_mode": {"type": "integer", "minimum": min(RESIZE_MODES), "maximum": max(RESIZE_MODES), "default": 0,
                        "description": "img2img's resize mode, which lays a Custom light map out: 0 Just resize, "
                                       "1 Crop and resize, 2 Resize and fill, 3 Just resize (latent upscale)"},
    },
    "additionalProperties": False,
}
REMOVE_BACKGROUND_REQUEST = {
    "type": "object", "properties": {"image": IMAGE}, "required": ["image"], "additionalProperties": False,
}
MODEL = {"type": "object", "properties": {
    "name": {"type": "string"}, "kind": {"type": "string", "enum": ["fc", "fcon", "fbc"]}, "label": {"type": "string"},
    "hash": {"type": "string"}, "size": {"type": "integer"}}}
ANSWERS = {
    "models": {"type": "object", "properties": {"models": {"type": "array", "items": MODEL}}, "required": ["models"]},
    "light-map": {**PNG_ANSWER, "properties": {**PNG_ANSWER["properties"], "width": {"type": "integer"},
                                               "height": {"type": "integer"}}},
    "remove-background": {**PNG_ANSWER, "description": "the picture as RGBA, the remover's alpha"},
}
REQUESTS = {"light-map": LIGHT_MAP_REQUEST, "remove-background": REMOVE_BACKGROUND_REQUEST}
FAULTS = {
    "400": "the request is refused: the detail names the field and the fix",
    "401": "--api-auth is on and the credentials are missing or wrong",
    "413": "an image (its file or its pixels) is over the size accepted",
    "422": "the body is not a JSON object",
    "500": "a fault of the server's (a model file it cannot read): its traceback is in the webui's console",
    "502": "a model the server needed could not be downloaded",
    "503": "the server cannot serve this now; Retry-After says when to try again",
}


def answer(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def openapi(path: str) -> dict[str, Any]:
    """`add_api_route` arguments describing endpoint `path` (its last part)."""
    responses = {"200": {"description": "done", **answer(ANSWERS[path])}}
    responses.update({code: {"description": text, **answer(ERROR)} for code, text in FAULTS.items()})
    extra: dict[str, Any] = {"responses": responses}
    if path in REQUESTS:
        extra["requestBody"] = {"required": True, **answer(REQUESTS[path])}
    return {"openapi_extra": extra}
