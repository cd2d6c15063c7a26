"""Parameter values from what A1111, the API or the panel sends: checked and typed by the schema."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..errors import IcLightError, shown
from ..images.image_decoding import decode_image
from ..images.light_maps import parse_color
from ..images.placed_lights import parse_lights
from .params import PARAMS, PARAMS_BY_KEY, Param, defaults


def values_from_args(args: Sequence[Any]) -> dict[str, Any]:
    """Script args -> checked values: positional in schema order, or a dict of named keys first.

    A dict stands in the place of the first argument, and A1111 fills the places after it as it fills
    any script's args: with the panel's defaults, or with what an API request's `infotext` gives
    (`Api.init_script_args`, modules/api/api.py v1.10.1 ~334-360); a caller may leave them None. The
    dict's keys are taken over those, so a request with `infotext` and a dict naming only the foreground
    keeps the infotext's light and model."""
    if args and isinstance(args[0], Mapping):
        named = dict(args[0])
        refuse_unknown(named, list(PARAMS_BY_KEY), "IC-Light")
        values = positional_values(args[1:], start=1, unset=None)
        # Sending the IC-Light dict asks for IC-Light: `enabled` defaults to true in this form.
        return {**values, "enabled": True, **{k: coerce(PARAMS_BY_KEY[k], v) for k, v in named.items()}}
    return positional_values(args)


def positional_values(args: Sequence[Any], start: int = 0, unset: object = object()) -> dict[str, Any]:
    """Values of the parameters from schema position `start` on, from `args`; the defaults for the rest
    and for any argument that is `unset`."""
    if start + len(args) > len(PARAMS):
        raise IcLightError(f"IC-Light takes {len(PARAMS)} arguments ({', '.join(PARAMS_BY_KEY)}), got {start + len(args)}.")
    values = defaults()
    for param, value in zip(PARAMS[start:], args):
        if value is not unset:
            values[param.key] = coerce(param, value)
    return values


def refuse_unknown(payload: Mapping[str, Any], known: Sequence[str], what: str) -> None:
    """Refuse, naming them, the keys of `payload` that are not `known` `what` arguments."""
    unknown = sorted(map(str, set(payload) - set(known)))
    if unknown:
        raise IcLightError(f"Unknown {what} argument(s): {', '.join(unknown)}. Known: {', '.join(known)}.")


def coerce(param: Param, value: Any) -> Any:
    """`value` as the type `param` needs, or an `IcLightError` naming the parameter."""
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise IcLightError(f"IC-Light '{param.key}' must be true or false, got {shown(value)}.")
    if param.kind == "choice":
        match = [c for c in param.choices if isinstance(value, str) and c.lower() == value.strip().lower()]
        if not match:
            raise IcLightError(f"IC-Light '{param.key}' must be one of {', '.join(param.choices)}; got {shown(value)}.")
        return match[0]
    if param.kind == "text":
        if value is None:
            return param.default
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a string, got {type(value).__name__}.")
        return value.strip()
    if param.kind == "color":
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {shown(value)}.")
        try:
            return "#%02x%02x%02x" % parse_color(value)
        except ValueError:
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {shown(value)}.") from None
    if param.kind == "lights":
        return parse_lights(value)
    if param.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {shown(value)}.")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {shown(value)}.") from None
        if not math.isfinite(number):
            raise IcLightError(f"IC-Light '{param.key}' must be a finite number, got {shown(value)}.")
        if isinstance(param.default, int):
            if not number.is_integer():
                raise IcLightError(f"IC-Light '{param.key}' must be a whole number, got {shown(value)}.")
            number = int(number)
        if (param.minimum is not None and number < param.minimum) or (param.maximum is not None and number > param.maximum):
            raise IcLightError(f"IC-Light '{param.key}' must be within {param.minimum}..{param.maximum}, got {number}.")
        return number
    return decode_image(value, param.key)
