"""How an infotext sets the panel's fields: pasted (PNG Info, the paste button), sent from txt2img
("Send to img2img"), or given to the API as a request's `infotext`; and what `/sdapi/v1/png-info` reports.

A1111 reads a field through its target: "Send to" copies the fields whose target is a *name* in
`paste_field_names`; a paste and the API's `apply_infotext` call a *callable* target with the
parsed parameters. The API's `infotext` never runs `on_infotext_pasted` callbacks, so whatever an
IC-Light infotext implies (IC-Light on, the model's dropdown label, the defaults of the fields it leaves
out) must come from the targets themselves: each is a name that is also callable. `/sdapi/v1/png-info`
runs the callbacks and not the targets (`Api.pnginfoapi`, modules/api/api.py v1.10.1 ~588-600): there
`complete_pasted_params` reports IC-Light on and the model's label, as a paste shows them.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import IcLightError
from ..generation.infotext import pasted_text
from ..generation.params import PARAMS_BY_KEY, Param
from ..generation.values import coerce
from .panel import model_label_for


class PastedField(str):
    """A field's infotext key (for "Send to") that reads the field's value from parsed parameters."""

    param: Param

    def __new__(cls, param: Param) -> "PastedField":
        field = super().__new__(cls, param.infotext_key)
        field.param = param
        return field

    def __call__(self, params: Mapping[str, Any]) -> Any:
        return pasted_value(self.param, params)


def complete_pasted_params(infotext: str, params: dict[str, Any]) -> None:
    """The `on_infotext_pasted` callback: an infotext with an IC-Light model has IC-Light on, and its model
    as the dropdown labels it."""
    model_key = PARAMS_BY_KEY["model"].infotext_key
    if model_key in params:
        params[PARAMS_BY_KEY["enabled"].infotext_key] = True
        params[model_key] = model_label_for(str(params[model_key]))


def pasted_value(param: Param, params: Mapping[str, Any]) -> Any:
    """The value a field takes from an infotext, typed as its control's value (the API converts a text
    with the control's type, and `bool("False")` is true); None leaves the field as it is."""
    if param.key == "enabled":
        return PARAMS_BY_KEY["model"].infotext_key in params  # IC-Light is on exactly when a model is recorded
    text = pasted_text(param, params)
    if text is None:
        return None
    if param.key == "model":
        return model_label_for(text)
    if param.kind in ("bool", "number"):
        try:
            return coerce(param, text)
        except IcLightError:
            return None  # unreadable: the field keeps its value, the generation names the problem
    return text
