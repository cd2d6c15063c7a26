"""Mirrors modules/api/api.py (v1.10.1):

- `encode_pil_to_base64` (lines 102-132): how the API sends each image of `processed.images`. PNG
  keeps the image's mode (RGBA stays RGBA) and its text info; JPEG and WebP are sent as RGB.
  Departure: the infotext is not written into JPEG/WebP EXIF (piexif is not a test dependency).
- `api_middleware`'s `handle_exception` (lines 167-181) and its registration (183-198): any exception
  a route raises is answered as JSON with the exception's own `status_code` attribute (500 when it
  has none); the traceback (with locals) is printed to the console unless the exception is an
  `HTTPException`. Departure: what would be printed is appended to `console` for the tests.
- `Api.apply_infotext` (lines 363-429), the part for script arguments: for a request with `infotext`,
  the parameters are parsed (`on_infotext_pasted` callbacks are NOT run) and each paste field of a
  script's input gets `field.function(params)` or `params.get(field.label)`, converted to the type
  of the component's value (`bool("False")` is true), as the script argument at the input's index;
  `None` leaves the argument alone. The request's own `alwayson_scripts` args are applied after.
- `Api.__init__`'s credentials (lines 201-205), `add_api_route` and `auth` (lines 274-285): with
  `--api-auth user:password[,user2:password2]` every `/sdapi/v1/...` route depends on HTTP Basic
  authentication and answers 401 (with `WWW-Authenticate: Basic`) to a missing or wrong password.
- `decode_base64_to_image` (lines 77-99, base64 only): a data URL's prefix dropped, `base64.b64decode`
  without validation (line breaks pass), `images.read` (`Image.open` and `fix_image`: EXIF orientation).
- `pnginfoapi` (lines 588-600) at `POST /sdapi/v1/png-info`: the image's "parameters" text
  (`images.read_info_from_image`, PNG only here) parsed and given to the `on_infotext_pasted` callbacks,
  NOT to the paste fields; `unloadapi` (lines 654-657) at `POST /sdapi/v1/unload-checkpoint`:
  `sd_models.unload_model_weights()`, looked up on the module at each call.
"""
import base64
import io
from secrets import compare_digest

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image, ImageOps, PngImagePlugin

from modules import infotext_utils, script_callbacks, sd_models
from modules.shared import cmd_opts, opts

console = []


def encode_pil_to_base64(image):
    with io.BytesIO() as output_bytes:
        if opts.samples_format.lower() == "png":
            metadata = PngImagePlugin.PngInfo()
            texts = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}
            for key, value in texts.items():
                metadata.add_text(key, value)
            image.save(output_bytes, format="PNG", pnginfo=metadata if texts else None)
        elif opts.samples_format.lower() in ("jpg", "jpeg", "webp"):
            if image.mode in ("RGBA", "P"):
                image = image.convert("RGB")
            image.save(output_bytes, format="JPEG" if opts.samples_format.lower() in ("jpg", "jpeg") else "WEBP")
        else:
            raise ValueError("Invalid image format")
        return base64.b64encode(output_bytes.getvalue())


def decode_base64_to_image(encoding):
    if encoding.startswith("data:image/"):
        encoding = encoding.split(";")[1].split(",")[1]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(encoding)))
        return ImageOps.exif_transpose(image)
    except Exception as e:
        raise HTTPException(status_code=500, detail="Invalid encoded image") from e


def handle_exception(request: Request, e: Exception) -> JSONResponse:
    fields = vars(e)
    err = {"error": type(e).__name__, "detail": fields.get("detail", ""), "body": fields.get("body", ""), "errors": str(e)}
    if not isinstance(e, HTTPException):
        console.append(f"API error: {request.method}: {request.url} {err} (traceback with locals follows)")
    return JSONResponse(status_code=fields.get("status_code", 500), content=jsonable_encoder(err))


def api_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def exception_handling(request: Request, call_next):
        try:
            return await call_next(request)
        except Exception as e:
            return handle_exception(request, e)

    @app.exception_handler(Exception)
    async def fastapi_exception_handler(request: Request, e: Exception):
        return handle_exception(request, e)

    @app.exception_handler(HTTPException)
    async def http_exception_handler(request: Request, e: HTTPException):
        return handle_exception(request, e)


def infotext_script_args(params, paste_fields, script_inputs):
    """index -> value of the script arguments `params` (a parsed infotext) sets, as `apply_infotext` does."""

    def field_value(field):
        value = field.function(params) if field.function else params.get(field.label)
        if value is None:
            return None
        target_type = type(field.component.value)
        if target_type == type(None):
            return None
        if isinstance(value, dict) and value.get("__type__") == "generic_update":
            value = value.get("value")
        if value is not None and not isinstance(value, target_type):
            value = target_type(value)
        return value

    indexes = {component: i for i, component in enumerate(script_inputs)}
    mentioned = {}
    for field in paste_fields:
        if field.component in indexes and (value := field_value(field)) is not None:
            mentioned[indexes[field.component]] = value
    return mentioned


class Api:
    """The parts of A1111's `Api` that decide who may call a route and how errors are answered."""

    def __init__(self, app: FastAPI):
        if cmd_opts.api_auth:
            self.credentials = dict(pair.split(":") for pair in cmd_opts.api_auth.split(","))
        self.app = app
        api_middleware(app)
        self.add_api_route("/sdapi/v1/png-info", self.pnginfoapi, methods=["POST"])
        self.add_api_route("/sdapi/v1/unload-checkpoint", self.unloadapi, methods=["POST"])

    def add_api_route(self, path, endpoint, **kwargs):
        if cmd_opts.api_auth:
            return self.app.add_api_route(path, endpoint, dependencies=[Depends(self.auth)], **kwargs)
        return self.app.add_api_route(path, endpoint, **kwargs)

    def pnginfoapi(self, req: dict):
        image = decode_base64_to_image(req["image"].strip())
        geninfo = image.info.get("parameters", "")
        params = infotext_utils.parse_generation_parameters(geninfo)
        script_callbacks.infotext_pasted_callback(geninfo, params)
        return {"info": geninfo, "parameters": params}

    def unloadapi(self):
        sd_models.unload_model_weights()
        return {}

    def auth(self, credentials: HTTPBasicCredentials = Depends(HTTPBasic())):
        if credentials.username in self.credentials:
            if compare_digest(credentials.password, self.credentials[credentials.username]):
                return True
        raise HTTPException(status_code=401, detail="Incorrect username or password", headers={"WWW-Authenticate": "Basic"})
