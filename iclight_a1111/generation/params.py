"""The one schema of IC-Light's parameters: it drives the UI (its controls and when each is shown),
the API, the infotext and the X/Y/Z axes.

Values travel as a dict keyed by `Param.key`. From the API they come either positionally (in
schema order, as A1111 fills a script's args) or as one dict with named keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..images.light_maps import DIAGONALS, DIRECTIONS

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
    Param("model", "Model", "text", "", defines_result=True,
          help="IC-Light file in models/ic-light: fc relights by the prompt (in img2img also by a light map), "
               "fcon is fc trained with offset noise, fbc relights the subject to match a background"),
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


def shown_keys(values: Mapping[str, Any], variant: str, is_img2img: bool) -> set[str]:
    """The parameters whose controls the panel shows for these values, model variant and tab."""
    return {p.key for p in PARAMS if p.is_shown(values, variant, is_img2img)}
