"""Mirrors modules/infotext_utils.py (v1.10.1) lines 34-44, 139-185 and 476-520, the ways panel values are restored:

- `PasteField(component, target)`: what `add_paste_fields` makes of each `(component, target)` pair;
  a target that is a str is the field's `label` (its name), a callable one its `function`.

- `paste_values`: `connect_paste`'s `paste_func` on parsed infotext params (PNG Info, the paste
  button): `on_infotext_pasted` callbacks, then for each `(component, key)` field the value of a
  callable key or `params.get(key)`, converted to the component's value type ("False" for a bool).
- `send_to_fields`: `connect_paste_params_buttons` for "Send to img2img" from a gallery: the values of
  the source tab's fields whose *name* is in the script's `paste_field_names` (plus a few built-in
  names) are copied to the target's fields of the same names; callable keys never match a name.
"""
from modules import script_callbacks

BUILT_IN_NAMES = ["Prompt", "Negative prompt", "Steps", "Face restoration"]


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api, self.component = api, component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


def paste_values(paste_fields, params, infotext=""):
    script_callbacks.infotext_pasted_callback(infotext, params)
    updates = []
    for output, key in paste_fields:
        v = key(params) if callable(key) else params.get(key, None)
        if v is None:
            updates.append(None)
            continue
        valtype = type(output.value)
        if valtype == bool and v == "False":
            val = False
        elif valtype == int:
            val = float(v)
        else:
            val = valtype(v)
        updates.append(val)
    return updates


def send_to_fields(source_fields, target_fields, paste_field_names):
    names = BUILT_IN_NAMES + list(paste_field_names)
    inputs = [field for field, name in source_fields if name in names]
    outputs = [field for field, name in target_fields if name in names]
    return inputs, outputs
