"""IC-Light in the generation parameters (infotext): what is written, and what a paste fills in."""
from __future__ import annotations

from typing import Any, Mapping

from ..images.placed_lights import compact_text
from .params import INFOTEXT_PREFIX, PARAMS, PARAMS_BY_KEY, Param


def value_text(param: Param, value: Any) -> str:
    """A value as the infotext and the X/Y/Z axes write it (lights in the compact form)."""
    return compact_text(value) if param.kind == "lights" else str(value)


def is_default(param: Param, value: Any) -> bool:
    if param.kind == "number":
        return float(value) == float(param.default)
    return value == param.default


def infotext_entries(values: Mapping[str, Any], variant: str, is_img2img: bool, model_hash: str | None = None) -> dict[str, str]:
    """What goes into the generation parameters, as A1111 writes its own: of the parameters this
    generation used (images excepted), those that define the result and those not at their default."""
    entries = {
        p.infotext_key: value_text(p, values[p.key]) for p in PARAMS
        if p.in_infotext and p.applies(values, variant, is_img2img) and (p.defines_result or not is_default(p, values[p.key]))
    }
    if model_hash:
        entries[INFOTEXT_PREFIX + "model hash"] = model_hash
    return entries


def is_infotext_key(key: str) -> bool:
    """Whether a generation-parameters key is IC-Light's (so a generation can drop stale ones)."""
    return key.startswith(INFOTEXT_PREFIX)


def pasted_text(param: Param, params: Mapping[str, Any]) -> str | None:
    """The text an infotext gives `param`: its own, or its default's when an IC-Light infotext leaves it
    out (only what differs from a default is written); None for an infotext without IC-Light."""
    if PARAMS_BY_KEY["model"].infotext_key not in params:
        return None
    return params.get(param.infotext_key, value_text(param, param.default))
