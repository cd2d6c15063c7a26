"""Placed lights: point lights the user puts on the output image, and the light map they make.

A light is at `x`, `y` (fractions of the output's width and height, 0,0 the top-left corner), lights
a disc of `radius` (a fraction of the shorter side) and adds `color` x `intensity` at its centre,
fading with the distance d as `max(0, 1 - d / radius) ** falloff` (the *Falloff* of the gradient
presets: 1 is a linear cone, above 1 the light stays near its centre, below 1 it spreads). The map
is the shadow colour plus every light, clipped to 0..255. Distances are measured in pixels from pixel
centres, so a light at (0.5, 0.5) is centred on any size.

Compact text form (infotext, X/Y/Z, the panel's list): `x,y,radius,#rrggbb,intensity` per light,
`;` or a new line between lights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import IcLightError, shown

MAX_LIGHTS = 16
MAX_LIGHT_TEXT = 100  # characters of one light in the compact form, spaces included (it takes about 30)
MAX_INTENSITY = 10.0
FIELDS = ("x", "y", "radius", "color", "intensity")
DEFAULT_RADIUS, DEFAULT_INTENSITY = 0.5, 1.0


@dataclass(frozen=True)
class PlacedLight:
    x: float
    y: float
    radius: float
    color: str  # '#rrggbb'
    intensity: float

    def compact(self) -> str:
        return f"{number_text(self.x)},{number_text(self.y)},{number_text(self.radius)},{self.color},{number_text(self.intensity)}"


def number_text(value: float) -> str:
    """Shortest round-tripping text of a float: 0.25 -> '0.25', 1.0 -> '1'."""
    return format(value, ".6g")


def compact_text(lights: tuple[PlacedLight, ...], separator: str = ";") -> str:
    return separator.join(light.compact() for light in lights)


def parse_color(value: str) -> tuple[int, int, int]:
    """'#RRGGBB' (or 'RRGGBB') -> (r, g, b); ValueError otherwise."""
    text = value.strip().lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"{shown(value)} is not a colour like #ffaa00")
    return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))


def parse_lights(value: Any) -> tuple[PlacedLight, ...]:
    """Lights from the API (a list of dicts or of 5-item lists), or from the compact text form.

    Every refusal names the light (1-based) and the field."""
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > MAX_LIGHTS * MAX_LIGHT_TEXT:
            raise IcLightError(f"IC-Light 'lights' is {len(value)} characters long; {MAX_LIGHTS} lights take at most "
                               f"{MAX_LIGHTS * MAX_LIGHT_TEXT}.")
        items = [part for part in re.split(r"[;\n]", value) if part.strip()]
        items = [[field.strip() for field in part.split(",")] for part in items]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise IcLightError(f"IC-Light 'lights' must be a list of lights or text like '0.5,0.5,0.5,#ffffff,1', got {shown(value)}.")
    if len(items) > MAX_LIGHTS:
        raise IcLightError(f"IC-Light 'lights': {len(items)} lights given, at most {MAX_LIGHTS} are allowed.")
    return tuple(parse_light(item, n) for n, item in enumerate(items, start=1))


def parse_light(item: Any, n: int) -> PlacedLight:
    if isinstance(item, PlacedLight):
        return item
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise IcLightError(f"IC-Light light {n}: unknown key(s) {', '.join(map(str, unknown))}; a light has {', '.join(FIELDS)}.")
        missing = [k for k in ("x", "y") if k not in item]
        if missing:
            raise IcLightError(f"IC-Light light {n}: '{missing[0]}' is missing; a light needs x and y (0..1).")
        fields = dict(item)
    elif isinstance(item, (list, tuple)):
        if not 2 <= len(item) <= len(FIELDS):
            raise IcLightError(f"IC-Light light {n}: expected x,y[,radius[,color[,intensity]]], got {len(item)} values.")
        fields = dict(zip(FIELDS, item))
    else:
        raise IcLightError(f"IC-Light light {n} must be an object with {', '.join(FIELDS)}, got {shown(item)}.")
    x, y = fraction(fields["x"], n, "x"), fraction(fields["y"], n, "y")
    radius = number(fields.get("radius", DEFAULT_RADIUS), n, "radius")
    if radius <= 0:
        raise IcLightError(f"IC-Light light {n}: 'radius' must be positive (a fraction of the shorter side), got {radius:g}.")
    intensity = number(fields.get("intensity", DEFAULT_INTENSITY), n, "intensity")
    if not 0 <= intensity <= MAX_INTENSITY:
        raise IcLightError(f"IC-Light light {n}: 'intensity' must be within 0..{MAX_INTENSITY:g}, got {intensity:g}.")
    color = fields.get("color", "#ffffff")
    try:
        rgb = parse_color(color) if isinstance(color, str) else None
    except ValueError:
        rgb = None
    if rgb is None:
        raise IcLightError(f"IC-Light light {n}: 'color' must be a colour like #ffaa00, got {shown(color)}.")
    return PlacedLight(x, y, radius, "#%02x%02x%02x" % rgb, intensity)


def number(value: Any, n: int, name: str) -> float:
    if isinstance(value, bool):
        value = None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise IcLightError(f"IC-Light light {n}: '{name}' must be a number, got {shown(value)}.") from None
    if not np.isfinite(result):
        raise IcLightError(f"IC-Light light {n}: '{name}' must be a finite number, got {shown(value)}.")
    return result


def fraction(value: Any, n: int, name: str) -> float:
    result = number(value, n, name)
    if not 0 <= result <= 1:
        raise IcLightError(f"IC-Light light {n}: '{name}' must be within 0..1 (a fraction of the image), got {result:g}.")
    return result


def placed_light_map(lights: tuple[PlacedLight, ...], width: int, height: int, shadow: tuple[int, int, int],
                     falloff: float) -> np.ndarray:
    """uint8 HxWx3: `shadow` plus each light's colour x intensity x falloff(distance / radius), clipped."""
    if not lights:
        raise IcLightError("IC-Light light is 'Placed' but no light was placed: click the preview, or give 'lights'.")
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    total = np.zeros((height, width, 3))
    for light in lights:
        distance = np.hypot(xx - light.x * width, yy - light.y * height) / (light.radius * min(width, height))
        weight = np.clip(1.0 - distance, 0.0, 1.0) ** falloff * light.intensity
        total += weight[..., None] * np.array(parse_color(light.color), dtype=np.float64)
    return np.clip(np.array(shadow, dtype=np.float64) + total, 0, 255).astype(np.uint8)


def light_at(x: float, y: float, color: str, radius: float = DEFAULT_RADIUS, intensity: float = DEFAULT_INTENSITY) -> PlacedLight:
    """A new light where the preview was clicked (x, y fractions, clamped into the image)."""
    return PlacedLight(round(min(max(x, 0.0), 1.0), 3), round(min(max(y, 0.0), 1.0), 3), radius, color, intensity)
