"""IC-Light's HTTP endpoints beside A1111's `/sdapi`: the model files, the light map a generation would
encode, and the background removal cut-out. Requests are checked by the parameter schema, as a
generation's arguments are: a refusal is a 4xx answer with the same message, a fault of the server's a
5xx (`api_errors`). Who may call them is decided as for A1111's `/sdapi/v1` routes (`--api-auth`)."""
from __future__ import annotations

import base64
import io
import math
from secrets import compare_digest
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from fastapi import Body, Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image

from ..errors import IcLightError, shown
from ..generation.light_map import light_map_image
from ..generation.values import refuse_unknown, values_from_args
from ..images.background_removal import check_feed
from ..images.image_decoding import decode_image
from ..images.resize_modes import JUST_RESIZE, RESIZE_MODES, Layout
from ..unet.model_files import ModelFile
from . import api_errors, endpoint_schemas
from .light_preview import DEFAULT_OUTPUT_SIZE

PREFIX = "/iclight/v1"
LIGHT_MAP_KEYS = endpoint_schemas.LIGHT_MAP_KEYS
MAX_SIDE = endpoint_schemas.MAX_SIDE


class EndpointHost(Protocol):
    """What the endpoints need from A1111 (implemented by `webui.host.A1111Host`)."""

    def model_files(self) -> list[ModelFile]: ...
    def short_hash(self, model: ModelFile) -> str: ...
    def predict_alphas(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def list_models(host: EndpointHost) -> dict[str, Any]:
    return {"models": [
        {"name": m.name, "kind": m.kind, "label": m.label, "hash": host.short_hash(m), "size": m.path.stat().st_size}
        for m in host.model_files()
    ]}


def whole_number(payload: Mapping[str, Any], name: str, default: int, low: int, high: int, what: str) -> int:
    """`payload[name]` (or `default`) as an int within low..high: a JSON number, never a bool, NaN or Infinity."""
    value = payload.get(name, default)
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not (math.isfinite(number) and number.is_integer() and low <= number <= high):
        raise IcLightError(f"IC-Light light map '{name}' must be {what} within {low}..{high}, got {shown(value)}.")
    return int(number)


def light_map(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The light map (base64 PNG) an img2img fc generation with these settings and resize mode encodes."""
    refuse_unknown(payload, endpoint_schemas.LIGHT_MAP_ARGUMENTS, "light map")
    pixels = "a whole number of pixels"
    width = whole_number(payload, "width", DEFAULT_OUTPUT_SIZE[0], 8, MAX_SIDE, pixels)
    height = whole_number(payload, "height", DEFAULT_OUTPUT_SIZE[1], 8, MAX_SIDE, pixels)
    mode = whole_number(payload, "resize_mode", JUST_RESIZE, min(RESIZE_MODES), max(RESIZE_MODES), "an img2img resize mode")
    values = values_from_args([{k: v for k, v in payload.items() if k in LIGHT_MAP_KEYS}])
    if values["light"] == "None":
        raise IcLightError("IC-Light light 'None' keeps the img2img picture as the initial image: there is no light map.")
    return {"image": png_base64(light_map_image(values, width, height, Layout(mode))), "width": width, "height": height}


def cut_out_input(payload: Mapping[str, Any]) -> np.ndarray:
    """The picture a remove-background request sends, decoded and checked (nothing of the GPU needed yet)."""
    refuse_unknown(payload, ("image",), "remove-background")
    image = decode_image(payload.get("image"), "image")
    if image is None:
        raise IcLightError("IC-Light remove-background needs 'image': the picture as base64 PNG, JPEG or WebP.")
    check_feed(image.shape[1], image.shape[0], "image")
    return image


def cut_out(image: np.ndarray, host: EndpointHost) -> dict[str, Any]:
    """The subject as RGBA: its RGB and the background remover's alpha, as a generation uses them."""
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = host.predict_alphas([rgb])[0]
    return {"image": png_base64(np.dstack([rgb, (alpha * 255).round().astype(np.uint8)]))}


def api_credentials(api_auth: str | None) -> dict[str, str]:
    """`--api-auth "user:password,user2:password2"` as user -> password; empty when it is not given."""
    pairs = [entry.partition(":") for entry in (api_auth or "").split(",") if entry]
    return {user: password for user, _, password in pairs}


def basic_auth(credentials: Mapping[str, str]) -> Callable[..., None]:
    """A route dependency admitting exactly the `--api-auth` users, answering others as A1111's
    `/sdapi/v1` routes do: 401 with `WWW-Authenticate: Basic`."""

    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())) -> None:
        expected = credentials.get(given.username)
        if expected is None or not compare_digest(given.password.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="Incorrect username or password", headers={"WWW-Authenticate": "Basic"})

    return check


def add_routes(app: FastAPI, host: EndpointHost, exclusive: Callable[[], Any], credentials: Mapping[str, str]) -> None:
    """Register the endpoints on A1111's FastAPI app, behind HTTP Basic authentication when
    `credentials` (from `--api-auth`) are given, and the answer to the extension's server faults.
    `exclusive()` is a context manager held while the background remover runs, so it never shares the GPU
    with a generation; the request is decoded and checked before it is taken, so a slow or refused upload
    never holds up generations."""

    def models() -> dict[str, Any]:
        return list_models(host)

    def post_light_map(payload: dict = Body(...)) -> dict[str, Any]:
        return light_map(payload)

    def remove_background(payload: dict = Body(...)) -> dict[str, Any]:
        image = cut_out_input(payload)
        with exclusive():
            return cut_out(image, host)

    api_errors.install(app)
    guard = [Depends(basic_auth(credentials))] if credentials else []
    for path, endpoint, method in (("models", models, "GET"), ("light-map", post_light_map, "POST"),
                                   ("remove-background", remove_background, "POST")):
        app.add_api_route(f"{PREFIX}/{path}", endpoint, methods=[method], dependencies=guard,
                          **endpoint_schemas.openapi(path))
