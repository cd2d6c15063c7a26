"""How the webui's API answers IC-Light's server faults: their status (5xx), a Retry-After where a later
try can succeed, and their traceback logged once.

A1111's own handler (`api_middleware`, modules/api/api.py v1.10.1 ~167-197) answers any exception with its
`status_code` and logs the traceback of anything but an `HTTPException`, but sends no headers; Forge's
(`_handle_exception`, webui.py at dfdcbab6 lines 30-38, the app's handler of `Exception`) the same, the
server logging the traceback. This handler
takes IC-Light's faults first (Starlette picks the handler of the most specific class), from IC-Light's
routes and from `/sdapi/v1/txt2img|img2img` alike, and answers in the same JSON shape. Refusals
(`IcLightError`, an `HTTPException`) stay with A1111's handler: 4xx, no traceback.
"""
from __future__ import annotations

import sys
import traceback

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.middleware.exceptions import ExceptionMiddleware

from ..errors import IcLightFault

INSTALLED = "iclight_fault_handler"


async def handle_fault(request: Request, fault: IcLightFault) -> JSONResponse:
    """The answer to a fault, its traceback logged to the console (stderr)."""
    print(f"IC-Light: {request.method} {request.url.path} failed ({fault.status_code}): {fault}", file=sys.stderr)
    traceback.print_exception(type(fault), fault, fault.__traceback__, file=sys.stderr)
    body = {"error": type(fault).__name__, "detail": fault.detail, "body": "", "errors": str(fault)}
    return JSONResponse(status_code=fault.status_code, content=jsonable_encoder(body), headers=fault.headers)


def install(app: FastAPI) -> None:
    """Answer IC-Light's faults on `app` (once per app). Starlette builds its middleware stack, and with it
    the exception handlers, at the first request: A1111 adds its routes before that, but Forge's gradio 4
    has served one when it launched. Then the handler is added to the stack's `ExceptionMiddleware` as well,
    leaving the rest of the stack as the webui built it."""
    if getattr(app.state, INSTALLED, False):
        return
    app.add_exception_handler(IcLightFault, handle_fault)
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, ExceptionMiddleware):
        layer = getattr(layer, "app", None)
    if layer is not None:
        layer.add_exception_handler(IcLightFault, handle_fault)
    setattr(app.state, INSTALLED, True)
