"""Mirrors modules/infotext_utils.py (v1.10.1) lines 34-44, 139-185, 234-270 and 476-520, the ways panel values are
restored:

- `PasteField(component, target)`: what `add_paste_fields` makes of each `(component, target)` pair;
  a target that is a str is the field's `label` (its name), a callable one its `function`.

- `paste_values`: `connect_paste`'s `paste_func` on parsed infotext params (PNG Info, the paste
  button): `on_infotext_pasted` callbacks, then for each `(component, key)` field the value of a
  callable key or `params.get(key)`, converted to the component's value type ("False" for a bool).
- `send_to_fields`: `connect_paste_params_buttons` for "Send to img2img" from a gallery: the values of
  the source tab's fields whose *name* is in the script's `paste_field_names` (plus a few built-in
  names) are copied to the target's fields of the same names; callable keys never match a name.
"""
import json
import re

from modules import script_callbacks

BUILT_IN_NAMES = ["Prompt", "Negative prompt", "Steps", "Face restoration"]
# One "Key: value" of an infotext's last line: a key of word characters, spaces, '-' and '/'; a value up to the
# next comma, or a double-quoted JSON string (A1111 quotes values holding commas). Sizes ("512x640") split in two.
PARAM = re.compile(r'\s*(\w[-\w /]+):\s*("(?:[^"\\]|\\.)+"|[^,]*)(?:,|$)')
SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_generation_parameters(x):
    """The infotext's prompt, negative prompt and last-line parameters (lines 234-270; styles, hires
    back-compatibility and the defaults A1111 fills in for missing keys are left out)."""
    *lines, last = x.strip().split("\n")
    if len(PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt, negative = [], []
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:") or negative:
            negative.append(line.removeprefix("Negative prompt:").strip())
        else:
            prompt.append(line)
    res = {}
    for key, value in PARAM.findall(last):
        if len(value) > 1 and value[0] == value[-1] == '"':
            value = json.loads(value)
        size = SIZE.match(value)
        if size:
            res[f"{key}-1"], res[f"{key}-2"] = size.group(1), size.group(2)
        else:
            res[key] = value
    res["Prompt"], res["Negative prompt"] = "\n".join(prompt), "\n".join(negative)
    return res


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
