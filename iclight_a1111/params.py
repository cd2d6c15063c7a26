"""The one schema of IC-Light's parameters: it drives the UI (its controls and when each is shown),
the API, the infotext and the X/Y/Z axes.

Values travel as a dict keyed by `Param.key`. From the API they come either positionally (in
schema order, as A1111 fills a script's args) or as one dict with named keys.
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import IcLightError
from .light_maps import DIAGONALS, DIRECTIONS, parse_color
from .placed_lights import compact_text, parse_lights

LIGHTS = (*DIRECTIONS, *DIAGONALS, "Placed", "Ambient", "None", "Custom")
DETAIL_SOURCES = ("Input", "Foreground")
BACKGROUNDS = ("Upload", "Upload, flipped", *DIRECTIONS, "Ambient", "Original picture")
OUTPUTS = ("Generated", "Original background", "Transparent")
INFOTEXT_PREFIX = "IC-Light "


@dataclass(frozen=True)
class Param:
    key: str
    label: str
    kind: str  # "bool", "choice", "text", "color", "number", "lights" or "image"
    default: Any
    choices: tuple[str, ...] = ()
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    # Whether a generation uses this parameter: (values, model variant, is img2img) -> bool.
    applies: Callable[[Mapping[str, Any], str, bool], bool] = lambda values, variant, img2img: True
    # Whether the panel shows the control, when that differs from `applies` (images, which stay out
    # of the infotext): same arguments.
    shown: Callable[[Mapping[str, Any], str, bool], bool] | None = None
    # Written to the infotext whenever it applies, also at its default: it defines the result.
    defines_result: bool = False

    @property
    def infotext_key(self) -> str:
        return INFOTEXT_PREFIX + self.label.lower()

    @property
    def in_infotext(self) -> bool:
        """Images stay out of the infotext; `enabled` is implied by the presence of the others."""
        return self.kind != "image" and self.key != "enabled"

    def is_shown(self, values: Mapping[str, Any], variant: str, is_img2img: bool) -> bool:
        return (self.shown or self.applies)(values, variant, is_img2img)


def fc_img2img(values: Mapping[str, Any], variant: str, img2img: bool) -> bool:
    return img2img and variant != "fbc"


def light_map_built(values: Mapping[str, Any], variant: str, img2img: bool) -> bool:
    """img2img fc with a light map made from a preset or placed lights (colours and falloff shape it)."""
    return fc_img2img(values, variant, img2img) and (values["normal_map"] or values["light"] not in ("None", "Custom"))


def light_chosen(light: str) -> Callable[[Mapping[str, Any], str, bool], bool]:
    """img2img fc with `light` as the light (not replaced by a normal map's four)."""
    return lambda v, variant, img2img: fc_img2img(v, variant, img2img) and not v["normal_map"] and v["light"] == light


def processes_results(values: Mapping[str, Any]) -> bool:
    """Whether the results are changed after sampling (detail, colour, output)."""
    return values["restore_detail"] or values["preserve_color"] > 0 or values["output"] != "Generated"


PARAMS: tuple[Param, ...] = (
    Param("enabled", "Enabled", "bool", False),
    Param("model", "Model", "text", "", help="IC-Light file in models/ic-light (fc, fcon or fbc)", defines_result=True),
    Param("light", "Light", "choice", "Left", LIGHTS,
          help="img2img, fc: the light map that becomes the initial image (None keeps the img2img picture)",
          applies=lambda v, variant, img2img: fc_img2img(v, variant, img2img) and not v["normal_map"],
          defines_result=True),
    Param("foreground", "Foreground", "image", None,
          help="the subject; in img2img the img2img picture is used when this is empty",
          shown=lambda v, variant, img2img: not img2img),
    Param("light_map", "Light map", "image", None, help="used when Light is Custom", shown=light_chosen("Custom")),
    Param("background_source", "Background", "choice", "Upload", BACKGROUNDS,
          help="fbc: the background condition: an upload, a light gradient, or the picture with the subject's area filled in",
          applies=lambda v, variant, img2img: variant == "fbc"),
    Param("background", "Background image", "image", None, help="fbc: used when Background is Upload",
          shown=lambda v, variant, img2img: variant == "fbc" and v["background_source"].startswith("Upload")),
    Param("remove_background", "Remove background", "bool", False,
          help="cut the subject out with RMBG-1.4 (models/rmbg/model.safetensors; downloaded when missing)"),
    Param("extra_outputs", "Extra outputs", "bool", False,
          help="add the foreground, light map and background as used to the results"),
    Param("light_color", "Light color", "color", "#ffffff",
          help="fc light maps: colour of the lit side (placed lights have their own; new ones take this)",
          applies=lambda v, variant, img2img: light_map_built(v, variant, img2img) and (v["normal_map"] or v["light"] != "Placed"),
          shown=light_map_built),
    Param("shadow_color", "Shadow color", "color", "#000000", help="fc light maps: colour of the dark side",
          applies=light_map_built),
    Param("falloff", "Falloff", "number", 1.0, minimum=0.2, maximum=5.0, step=0.1,
          help="fc light maps: >1 keeps the light near its edge, <1 spreads it; 1 is the reference's linear ramp",
          applies=light_map_built),
    Param("restore_detail", "Restore detail", "bool", False,
          help="put the subject's fine detail back into each result (difference of Gaussians)"),
    Param("detail_size", "Detail blur size", "number", 5, minimum=1, maximum=51, step=2,
          help="odd Gaussian size: detail finer than this comes from the subject, light coarser from the result",
          applies=lambda v, variant, img2img: v["restore_detail"]),
    Param("detail_source", "Detail source", "choice", "Input", DETAIL_SOURCES,
          help="the subject as given, or cut out on grey by its alpha or the background remover (what the model saw)",
          applies=lambda v, variant, img2img: v["restore_detail"]),
    Param("reinforce_foreground", "Reinforce foreground", "bool", False,
          help="img2img, fc: paste the subject onto the light map where its alpha is, so it keeps its colours",
          applies=lambda v, variant, img2img: fc_img2img(v, variant, img2img) and (v["normal_map"] or v["light"] != "None")),
    Param("normal_map", "Normal map", "bool", False,
          help="img2img, fc: relight with Left, Right, Bottom and Top in one batch of four (one seed) and add a normal map",
          applies=fc_img2img),
    Param("normal_sigma", "Normal sigma", "number", 0.0, minimum=0.0, maximum=16.0, step=0.5,
          help="normal map: z = clip(1 - x^2 - y^2) ^ (sigma / 2); 0 keeps z = 1 before normalising",
          applies=lambda v, variant, img2img: v["normal_map"]),
    Param("lights", "Lights", "lights", (),
          help="Light 'Placed': x,y (0..1 of the image, 0,0 top-left), radius (fraction of the shorter side), "
               "colour, intensity per light; ';' or a new line between lights",
          applies=light_chosen("Placed")),
    Param("hires_pass", "Hires pass", "choice", "Automatic", ("Automatic", "On", "Off"),
          help="IC-Light in the hires. fix pass: Automatic is on with the same checkpoint, off with another Hires "
               "checkpoint; On merges IC-Light onto an SD 1.x Hires checkpoint; Off refines the relit image plainly",
          applies=lambda v, variant, img2img: not img2img and v["hires_pass"] != "Automatic",
          shown=lambda v, variant, img2img: not img2img),
    Param("output", "Output", "choice", "Generated", OUTPUTS,
          help="the result as generated, the relit subject over the picture you gave (by its alpha), "
               "or the relit subject with its alpha (RGBA)"),
    Param("light_background", "Light the background", "number", 0.0, minimum=0.0, maximum=1.0, step=0.05,
          help="Original background: shade the picture by the light map's luminance (0 leaves it untouched)",
          applies=lambda v, variant, img2img: v["output"] == "Original background"),
    Param("preserve_color", "Preserve color", "number", 0.0, minimum=0.0, maximum=1.0, step=0.05,
          help="keep the relit luminance and take the subject's own chroma back, inside its alpha (1: fully)"),
    Param("keep_raw", "Keep the raw relight", "bool", False,
          help="also add each result as sampled, before detail, colour and output",
          applies=lambda v, variant, img2img: processes_results(v)),
)
PARAMS_BY_KEY = {p.key: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    return {p.key: p.default for p in PARAMS}


def values_from_args(args: Sequence[Any]) -> dict[str, Any]:
    """Script args (positional in schema order, or a single dict of named keys) -> checked values."""
    if args and isinstance(args[0], Mapping):
        named = dict(args[0])
        unknown = sorted(set(named) - set(PARAMS_BY_KEY))
        if unknown:
            raise IcLightError(
                f"Unknown IC-Light argument(s): {', '.join(unknown)}. Known: {', '.join(PARAMS_BY_KEY)}."
            )
        # Sending the IC-Light dict asks for IC-Light: `enabled` defaults to true in this form.
        return {**defaults(), "enabled": True, **{k: coerce(PARAMS_BY_KEY[k], v) for k, v in named.items()}}
    if len(args) > len(PARAMS):
        raise IcLightError(f"IC-Light takes {len(PARAMS)} arguments ({', '.join(PARAMS_BY_KEY)}), got {len(args)}.")
    values = defaults()
    for param, value in zip(PARAMS, args):
        values[param.key] = coerce(param, value)
    return values


def coerce(param: Param, value: Any) -> Any:
    """`value` as the type `param` needs, or an `IcLightError` naming the parameter."""
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise IcLightError(f"IC-Light '{param.key}' must be true or false, got {value!r}.")
    if param.kind == "choice":
        match = [c for c in param.choices if isinstance(value, str) and c.lower() == value.strip().lower()]
        if not match:
            raise IcLightError(f"IC-Light '{param.key}' must be one of {', '.join(param.choices)}; got {value!r}.")
        return match[0]
    if param.kind == "text":
        if value is None:
            return param.default
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a string, got {type(value).__name__}.")
        return value.strip()
    if param.kind == "color":
        if not isinstance(value, str):
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {value!r}.")
        try:
            return "#%02x%02x%02x" % parse_color(value)
        except ValueError:
            raise IcLightError(f"IC-Light '{param.key}' must be a colour like #ffaa00, got {value!r}.") from None
    if param.kind == "lights":
        return parse_lights(value)
    if param.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {value!r}.")
        try:
            number = type(param.default)(value)
        except ValueError:
            raise IcLightError(f"IC-Light '{param.key}' must be a number, got {value!r}.") from None
        if (param.minimum is not None and number < param.minimum) or (param.maximum is not None and number > param.maximum):
            raise IcLightError(f"IC-Light '{param.key}' must be within {param.minimum}..{param.maximum}, got {number}.")
        return number
    return decode_image(value, param.key)


def decode_image(value: Any, name: str) -> np.ndarray | None:
    """None, a numpy array, a PIL image, gradio's {'image': ...} dict, or base64 (optionally a data URL)."""
    if isinstance(value, Mapping):
        value = value.get("image")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        data = value.strip()
        if data.startswith("data:"):
            data = data.partition(",")[2]
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise IcLightError(f"IC-Light '{name}': the string is not valid base64 image data.") from None
        try:
            value = Image.open(io.BytesIO(raw))
            value.load()
        except (UnidentifiedImageError, OSError):
            raise IcLightError(f"IC-Light '{name}': the data is not an image (PNG, JPEG or WebP expected).") from None
    if isinstance(value, Image.Image):
        value = np.array(value.convert("RGBA") if "A" in value.getbands() or value.mode == "P" else value.convert("RGB"))
    if not isinstance(value, np.ndarray):
        raise IcLightError(f"IC-Light '{name}' must be an image, got {type(value).__name__}.")
    if value.ndim == 2:
        value = np.stack((value,) * 3, axis=-1)
    if value.ndim != 3 or value.shape[2] not in (3, 4) or min(value.shape[:2]) == 0:
        raise IcLightError(f"IC-Light '{name}' has shape {value.shape}; an RGB or RGBA image is needed.")
    return value.astype(np.uint8) if value.dtype != np.uint8 else value


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


def pasted_defaults(params: Mapping[str, Any]) -> dict[str, str]:
    """For a pasted infotext of an IC-Light generation, the text of every field it leaves out: the
    default (it was not written because it was the default). Nothing for other infotexts."""
    if PARAMS_BY_KEY["model"].infotext_key not in params:
        return {}
    return {p.infotext_key: value_text(p, p.default) for p in PARAMS
            if p.in_infotext and p.infotext_key not in params}


def shown_keys(values: Mapping[str, Any], variant: str, is_img2img: bool) -> set[str]:
    """The parameters whose controls the panel shows for these values, model variant and tab."""
    return {p.key for p in PARAMS if p.is_shown(values, variant, is_img2img)}
