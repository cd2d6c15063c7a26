"""IC-Light's HTTP endpoints beside A1111's `/sdapi`: the model files, the light map a generation would
encode, and the background removal cut-out. Requests are checked by the parameter schema, as a
generation's arguments are, and a refusal comes back as a 400 answer with the same message. Who may
call them is decided as for A1111's `/sdapi/v1` routes (`--api-auth`)."""
from __future__ import annotations

import base64
import io
from secrets import compare_digest
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from fastapi import Body, Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image

from ..errors import IcLightError
from ..generation.light_map import light_map_image
from .light_preview import DEFAULT_OUTPUT_SIZE
from ..unet.model_files import ModelFile
from ..generation.values import decode_image, values_from_args

PREFIX = "/iclight/v1"
LIGHT_MAP_KEYS = ("light", "lights", "light_color", "shadow_color", "falloff", "light_map")
MAX_SIDE = 4096


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


def side(payload: dict[str, Any], name: str, default: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not 8 <= value <= MAX_SIDE:
        raise IcLightError(f"IC-Light light map '{name}' must be a whole number of pixels within 8..{MAX_SIDE}, got {value!r}.")
    return int(value)


def light_map(payload: dict[str, Any]) -> dict[str, Any]:
    """The light map (base64 PNG) an img2img fc generation with these settings encodes."""
    unknown = sorted(set(payload) - {*LIGHT_MAP_KEYS, "width", "height"})
    if unknown:
        raise IcLightError(f"Unknown light map argument(s): {', '.join(unknown)}. Known: {', '.join((*LIGHT_MAP_KEYS, 'width', 'height'))}.")
    width, height = side(payload, "width", DEFAULT_OUTPUT_SIZE[0]), side(payload, "height", DEFAULT_OUTPUT_SIZE[1])
    values = values_from_args([{k: v for k, v in payload.items() if k in LIGHT_MAP_KEYS}])
    if values["light"] == "None":
        raise IcLightError("IC-Light light 'None' keeps the img2img picture as the initial image: there is no light map.")
    return {"image": png_base64(light_map_image(values, width, height)), "width": width, "height": height}


def cut_out(payload: dict[str, Any], host: EndpointHost) -> dict[str, Any]:
    """The subject as RGBA: its RGB and the background remover's alpha, as a generation uses them."""
    unknown = sorted(set(payload) - {"image"})
    if unknown:
        raise IcLightError(f"Unknown remove-background argument(s): {', '.join(unknown)}. Known: image.")
    image = decode_image(payload.get("image"), "image")
    if image is None:
        raise IcLightError("IC-Light remove-background needs 'image': the picture as base64 PNG, JPEG or WebP.")
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
    `credentials` (from `--api-auth`) are given. `exclusive()` is a context manager held while the
    background remover runs, so it never shares the GPU with a generation."""

    # A refusal is an `IcLightError`, an HTTPException of status 400 whose detail is its message.
    def models() -> dict[str, Any]:
        return list_models(host)

    def post_light_map(payload: dict = Body(...)) -> dict[str, Any]:
        return light_map(payload)

    def remove_background(payload: dict = Body(...)) -> dict[str, Any]:
        with exclusive():
            return cut_out(payload, host)

    guard = [Depends(basic_auth(credentials))] if credentials else []
    app.add_api_route(f"{PREFIX}/models", models, methods=["GET"], dependencies=guard)
    app.add_api_route(f"{PREFIX}/light-map", post_light_map, methods=["POST"], dependencies=guard)
    app.add_api_route(f"{PREFIX}/remove-background", remove_background, methods=["POST"], dependencies=guard)
