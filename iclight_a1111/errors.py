"""The exceptions the extension raises, and the HTTP status each stands for.

- `IcLightError` (400) and `ImageTooLarge` (413): a refusal of what was asked for, which the one who
  asked can fix; the message names the problem and the fix. No traceback: nothing is wrong with the server.
- `IcLightFault` (500) and its kinds `ModelFileFault` (500), `DownloadFailed` (502) and `RetryLater`
  (503, with Retry-After): something the server cannot do now (a model file it cannot read, a failed
  download, weights it could not restore); its traceback is logged once.
"""
from __future__ import annotations

import reprlib

from fastapi import HTTPException


class IcLightError(HTTPException):
    """A refusal whose message names the problem and how to fix it.

    It is an `HTTPException` because A1111's API answers any exception with the exception's own
    `status_code` (500 when it has none) and prints a traceback unless it is an `HTTPException`: a
    refusal raised during a `/sdapi/v1/txt2img` or `img2img` request is then a 400 whose `detail` is
    the message, not a server fault a client would retry."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(status_code=type(self).status_code, detail=message)
        self.args = (message,)  # HTTPException leaves `args` empty: str(error) is the message

    def __str__(self) -> str:
        return self.detail


class ImageTooLarge(IcLightError):
    """An image (its file or its pixels) over the size IC-Light accepts."""

    status_code = 413


class IcLightFault(Exception):
    """A fault of the server's, not of the request. Not an `HTTPException`, so that A1111's API error
    handler logs its traceback; it reads `status_code` and `detail` from the instance."""

    status_code = 500
    retry_after: int | None = None  # seconds after which the same request may succeed

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.detail = message

    def __str__(self) -> str:
        return self.detail

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class ModelFileFault(IcLightFault):
    """A model file in the server's folders that cannot be used (corrupt, a pickle, not an IC-Light model)."""


class DownloadFailed(IcLightFault):
    """A model the server needed could not be downloaded."""

    status_code = 502


class RetryLater(IcLightFault):
    """The server cannot serve generations for now, and will be able to (memory freed, a restore retried)."""

    status_code = 503
    retry_after = 30


# How a message quotes a value a client sent: its repr, cut short (a client may send megabytes where a
# word belongs, and the message goes back to it).
SHORT_REPR = reprlib.Repr()
SHORT_REPR.maxstring = SHORT_REPR.maxother = 60
SHORT_REPR.maxlist = SHORT_REPR.maxtuple = SHORT_REPR.maxdict = SHORT_REPR.maxset = 4
SHORT_REPR.maxlevel = 2


def shown(value: object) -> str:
    try:
        return SHORT_REPR.repr(value)
    except ValueError:  # an integer too long to print
        return f"a {type(value).__name__}"
