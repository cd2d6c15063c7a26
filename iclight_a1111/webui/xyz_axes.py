"""X/Y/Z plot axes for IC-Light, made from the parameter schema.

An axis value is written to `p.iclight_overrides`, which the generation reads over the panel's values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..generation.job import OVERRIDES_ATTR
from ..generation.params import PARAMS, Param
from ..generation.values import coerce


@dataclass(frozen=True)
class AxisSpec:
    label: str
    type: type
    apply: Callable[[Any, Any, Any], None]
    choices: Callable[[], list[str]] | None


def axis_specs(model_names: Callable[[], list[str]]) -> list[AxisSpec]:
    """One axis per non-image parameter: on/off, model, light, background source, placed lights and every number."""
    specs = []
    for param in PARAMS:
        if param.kind in ("image", "color") or param.key in ("remove_background", "extra_outputs", "keep_raw"):
            continue
        if param.kind == "lights":
            # Text in the compact form; X/Y/Z splits its field at commas, so each value is quoted.
            specs.append(AxisSpec(f"IC-Light {param.label.lower()}", str, setter(param), None))
        elif param.kind == "number":
            specs.append(AxisSpec(f"IC-Light {param.label.lower()}", type(param.default), setter(param), None))
        elif param.kind == "bool":
            specs.append(AxisSpec(f"IC-Light {param.label.lower()}", str, setter(param), lambda: ["True", "False"]))
        elif param.key == "model":
            specs.append(AxisSpec("IC-Light model", str, setter(param), model_names))
        else:
            specs.append(AxisSpec(f"IC-Light {param.label.lower()}", str, setter(param), lambda c=param.choices: list(c)))
    return specs


def setter(param: Param) -> Callable[[Any, Any, Any], None]:
    def apply(p: Any, value: Any, _all_values: Any) -> None:
        overrides = dict(getattr(p, OVERRIDES_ATTR, {}))
        overrides[param.key] = coerce(param, value)
        setattr(p, OVERRIDES_ATTR, overrides)

    return apply
