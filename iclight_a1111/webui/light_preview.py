"""The panel's preview of the light map: what a generation would encode, at the output's aspect
ratio and a small size, with a faint copy of the subject over it; and the edits a click or a button
makes to the list of placed lights."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import IcLightError
from ..generation.light_map import light_map_image
from ..generation.params import PARAMS_BY_KEY, defaults
from ..generation.values import coerce
from ..images.image_decoding import decode_image
from ..images.placed_lights import compact_text, light_at, parse_lights
from ..images.resize_modes import REFERENCE, Layout

DEFAULT_OUTPUT_SIZE = (512, 640)  # the reference's size, when the output size is not known
PREVIEW_SIDE = 256  # the longer side of the preview, in pixels
SUBJECT_OPACITY = 0.3
NEUTRAL_GREY = 127
MARK_RADIUS = 3


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The preview's size: the output's aspect ratio, the longer side PREVIEW_SIDE."""
    width, height = max(int(width or 1), 1), max(int(height or 1), 1)
    scale = PREVIEW_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview_image(values: Mapping[str, Any], width: int, height: int, subject: np.ndarray | None = None,
                  layout: Layout = REFERENCE) -> np.ndarray:
    """uint8 HxWx3: the light map for `values` at the preview size of a `width` x `height` output
    (grey where there is none yet: no light placed, no custom map uploaded, light None), the subject
    drawn faintly over it (by its alpha when it has one) and a dot on each placed light. The subject
    and a custom map are laid out by `layout`, as the generation lays them out (img2img: its resize
    mode), so that a light placed on the subject lands there."""
    w, h = preview_size(width, height)
    try:
        image = light_map_image(values, w, h, layout).astype(np.float32) if values["light"] != "None" else None
    except IcLightError:
        image = None
    if image is None:
        image = np.full((h, w, 3), NEUTRAL_GREY, np.float32)
    if subject is not None:
        try:
            image = with_subject(image, subject, layout)
        except IcLightError:  # a subject the generation would refuse to fit is not drawn; the generation names it
            pass
    image = image.round().astype(np.uint8)
    if values["light"] == "Placed":
        mark_lights(image, values["lights"])
    return image


def with_subject(image: np.ndarray, subject: np.ndarray, layout: Layout) -> np.ndarray:
    """`image` (float HxWx3) with the subject drawn faintly over it, by its alpha when it has one."""
    h, w = image.shape[:2]
    rgb = layout.fit(np.ascontiguousarray(subject[..., :3]), w, h).astype(np.float32)
    opacity = np.full((h, w, 1), SUBJECT_OPACITY, np.float32)
    if subject.shape[2] == 4:
        opacity *= layout.fit(np.ascontiguousarray(subject[..., 3]), w, h)[..., None].astype(np.float32) / 255.0
    return image * (1 - opacity) + rgb * opacity


def mark_lights(image: np.ndarray, lights: Any) -> None:
    """A small dot, black ringed in white, at each light, so a light can be found in a bright map."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    for light in lights:
        distance = np.hypot(xx - light.x * w, yy - light.y * h)
        image[distance <= MARK_RADIUS + 1] = 255
        image[distance <= MARK_RADIUS] = 0


def subject_array(value: Any) -> np.ndarray | None:
    """A picture from a gradio image component (numpy, PIL, or the editor's dict) for the preview."""
    try:
        return decode_image(value, "subject")
    except IcLightError:
        return None


def lights_text_with_click(text: str, index: tuple[int, int], width: int, height: int, color: str) -> str:
    """The lights list with a new light where the preview (of a `width` x `height` output) was
    clicked: `index` is the clicked pixel of the preview. A list being edited that does not parse is
    kept as typed, with the new light on a line of its own."""
    w, h = preview_size(width, height)
    new = light_at((index[0] + 0.5) / w, (index[1] + 0.5) / h, color)
    try:
        return compact_text((*parse_lights(text), new), "\n")
    except IcLightError:
        return f"{text.rstrip()}\n{new.compact()}".lstrip()


def lights_text_without_last(text: str) -> str:
    lines = [line for line in text.replace(";", "\n").splitlines() if line.strip()]
    return "\n".join(lines[:-1])


def values_for_preview(values: Mapping[str, Any]) -> dict[str, Any]:
    """Panel values as the preview needs them; a list being typed that does not parse yet counts as
    no lights, an unreadable colour as the default."""
    checked = defaults()
    for key, value in values.items():
        try:
            checked[key] = coerce(PARAMS_BY_KEY[key], value)
        except IcLightError:
            pass
    return checked
