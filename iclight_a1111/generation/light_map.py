"""The light maps a generation starts from: a preset, placed or custom light, fitted to the output."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import IcLightError
from ..images.detail import reinforce_foreground
from ..images.light_maps import DIAGONALS, DIRECTIONS, fc_light_map, parse_color
from ..images.normals import NORMAL_LIGHTS
from ..images.placed_lights import placed_light_map
from ..images.resize_modes import REFERENCE, Layout
from ..images.vae_encoding import composite_on_grey
from .job import IcLightJob


def flatten(image: np.ndarray) -> np.ndarray:
    """RGB as is; RGBA composited over grey by its alpha, as the reference does."""
    if image.shape[2] == 4:
        return composite_on_grey(image[..., :3], image[..., 3].astype(np.float32) / 255.0)
    return image


def light_maps(job: IcLightJob, width: int, height: int) -> list[np.ndarray]:
    """The initial images of an img2img fc pass: the light map (the four of a normal map), with the
    subject pasted onto it when reinforced (one map per subject, or the one subject on each map)."""
    directions = NORMAL_LIGHTS if job.values["normal_map"] else (job.values["light"],)
    bases = [light_map_image({**job.values, "light": d}, width, height, job.layout) for d in directions]
    if not job.values["reinforce_foreground"]:
        return bases
    if any(a is None for a in job.alphas):
        raise IcLightError(
            "IC-Light 'Reinforce foreground' needs to know where the subject is: turn on 'Remove background', "
            "or give the subject as an RGBA image whose alpha marks it."
        )
    subjects = [(job.layout.fit(s, width, height), job.layout.fit_alpha(a, width, height))
                 for s, a in zip(job.subjects, job.alphas)]
    if len(bases) == 1:
        return [reinforce_foreground(bases[0], s, a) for s, a in subjects]
    return [reinforce_foreground(b, *subjects[0]) for b in bases]


def light_map_image(values: Mapping[str, Any], width: int, height: int, layout: Layout = REFERENCE) -> np.ndarray:
    light = values["light"]
    if light == "Custom":
        if values["light_map"] is None:
            raise IcLightError("IC-Light light is 'Custom' but no light map was given: upload one, or pick a preset light.")
        return layout.fit(flatten(values["light_map"]), width, height, "light_map")
    lit, dark = parse_color(values["light_color"]), parse_color(values["shadow_color"])
    if light == "Placed":
        return placed_light_map(values["lights"], width, height, dark, values["falloff"])
    if light in DIRECTIONS or light in DIAGONALS or light == "Ambient":
        return fc_light_map(light, width, height, lit, dark, values["falloff"])
    raise IcLightError(f"Unknown IC-Light light {light!r}.")
