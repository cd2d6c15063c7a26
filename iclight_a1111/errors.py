"""The one exception type the extension raises for problems a user can fix."""
from fastapi import HTTPException


class IcLightError(HTTPException):
    """A refusal whose message names the problem and how to fix it.

    It is an `HTTPException` with status 400 because A1111's API answers any exception with the
    exception's own `status_code` (500 when it has none) and prints a traceback unless it is an
    `HTTPException`: a refusal raised during a `/sdapi/v1/txt2img` or `img2img` request is then a
    400 whose `detail` is the message, not a server fault a client would retry."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(status_code=type(self).status_code, detail=message)
        self.args = (message,)  # HTTPException leaves `args` empty: str(error) is the message

    def __str__(self) -> str:
        return self.detail
