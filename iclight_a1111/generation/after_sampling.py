"""What happens to each result after sampling, and the images IC-Light adds to the gallery.

Each real result goes through one pipeline, in this order, and the outcome is the result itself
(what A1111 saves, shows and returns):

1. *Restore detail*: the subject's fine detail put back (difference of Gaussians).
2. *Preserve color*: the subject's chroma taken back inside its alpha, the relit luminance kept.
3. *Output*: as generated; over the picture the user gave (*Original background*); or cut out with
   the subject's alpha (*Transparent*, RGBA).

A1111 calls `finish_result` once per real result (the `postprocess_image_after_composite` hook, after
its inpaint overlay), so inpaint mask images and other extensions' images (ControlNet's detect maps)
never pass through it. `add_extras` then appends, after everything else, what was asked for beside
the results: each raw relight (*Keep the raw relight*), the normal maps (from the raw relights) and
the inputs (*Extra outputs*), each with the infotext and seed of the result it belongs to.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PIL import Image

from ..images.color_preservation import preserve_color
from ..images.composite import background_shading, on_grey, over_picture, transparent
from ..images.detail import restore_detail
from .job import IcLightJob, ResultRecord
from .light_map import light_map_image
from ..images.light_maps import DIAGONALS, DIRECTIONS, fbc_background
from ..images.normals import NORMAL_LIGHTS, normal_map_image, normals_from_relights
from .params import processes_results

FORMATS_WITH_ALPHA = ("png",)  # A1111 saves and sends JPEG and WebP as RGB
SaveImage = Callable[[Image.Image, int, str, str], None]  # image, result index, infotext, file name suffix
# Set in a transparent result's `Image.info`; not a string, so never written into a PNG's text chunks.
TRANSPARENT_MARK = "iclight_transparent"
NO_ALPHA_NOTE = ("IC-Light: the image format ({}) cannot hold the transparent output's alpha: "
                 "the results are flattened on grey. Choose PNG in Settings > Saving images to keep it.")


def finish_result(job: IcLightJob, raw: Image.Image, index: int) -> Image.Image:
    """Result number `index` after detail, colour and output; recorded for the extras."""
    if not processes_results(job.values):
        job.results.append(ResultRecord(index, raw, raw))
        return raw
    final = Image.fromarray(processed_result(job, np.array(raw.convert("RGB")), index))
    if final.mode == "RGBA" and job.image_format.lower() not in FORMATS_WITH_ALPHA:
        # A1111 would drop the alpha and keep the colour under it; grey is what the model saw.
        if not job.results:
            print(NO_ALPHA_NOTE.format(job.image_format))
        final = Image.fromarray(on_grey(np.array(final)))
    final.info.update(raw.info)
    if final.mode == "RGBA":
        final.info[TRANSPARENT_MARK] = True
    job.results.append(ResultRecord(index, raw.copy(), final))
    return final


def flattened_for_grid(images: list[Image.Image]) -> list[Image.Image]:
    """A grid's images with IC-Light's transparent results flattened on grey: A1111 pastes them into
    an RGB grid without their alpha, which would show the subject's colour carried out under alpha 0.
    Other images stay as they are."""
    return [Image.fromarray(on_grey(np.array(i))) if i.mode == "RGBA" and i.info.get(TRANSPARENT_MARK) is True else i
            for i in images]


def processed_result(job: IcLightJob, image: np.ndarray, index: int) -> np.ndarray:
    """Detail, then colour, then output, on one result (uint8 HxWx3); RGBA for a transparent output."""
    values = job.values
    height, width = image.shape[:2]
    subject = index % len(job.inputs)
    alpha = job.layout.fit_alpha(job.alphas[subject], width, height)
    if values["restore_detail"]:
        sources = job.inputs if values["detail_source"] == "Input" else job.subjects
        original = job.layout.fit(sources[subject], width, height)
        image = restore_detail(image, original, values["detail_size"])
    if values["preserve_color"] > 0:
        image = preserve_color(image, job.layout.fit(job.inputs[subject], width, height), alpha, values["preserve_color"])
    if values["output"] == "Original background":
        picture = job.layout.fit(job.pictures[index % len(job.pictures)], width, height)
        light_map = background_light_map(job, width, height)
        shading = None
        if light_map is not None and values["light_background"] > 0:
            shading = background_shading(light_map, values["light_background"])
        return over_picture(image, alpha, picture, shading)
    if values["output"] == "Transparent":
        alpha8 = job.layout.fit((job.alphas[subject] * 255).round().astype(np.uint8), width, height)
        return transparent(image, alpha8)
    return image


def background_light_map(job: IcLightJob, width: int, height: int) -> np.ndarray | None:
    """The light the subject was given, to shade the background with: img2img fc's light map, or fbc's
    gradient background; None when there is none (txt2img fc, Light None, an uploaded background)."""
    values = job.values
    if job.model.variant == "fbc":
        source = values["background_source"]
        return fbc_background(source, width, height) if source in (*DIRECTIONS, "Ambient") else None
    if job.light_maps and (values["light"] in (*DIRECTIONS, *DIAGONALS, "Ambient", "Custom")):
        return light_map_image(values, width, height, job.layout)
    return None


def add_extras(job: IcLightJob, processed: Any, width: int, height: int, save: SaveImage) -> None:
    """The `postprocess` hook: the extras appended after all images, each saved like a result.

    The real results are the images `finish_result` returned (found by identity): their infotexts are
    A1111's, in order after the grid's. The infotexts are laid out one per image, empty for images
    that are not results (mask images, detect maps)."""
    first = getattr(processed, "index_of_first_image", 0)
    texts = list(processed.infotexts)
    finals = {id(r.final): k for k, r in enumerate(job.results)}
    result_texts = [texts[first + k] if first + k < len(texts) else "" for k in range(len(job.results))]
    infotexts = texts[:first] + [result_texts[finals[id(i)]] if id(i) in finals else "" for i in processed.images[first:]]
    images = list(processed.images)

    def add(image: Image.Image, k: int, suffix: str) -> None:
        images.append(image)
        infotexts.append(result_texts[k])
        save(image, job.results[k].index, result_texts[k], suffix)

    if job.values["keep_raw"]:
        for k, record in enumerate(job.results):
            add(record.raw, k, "-iclight-raw")
    if job.values["normal_map"]:
        group = len(NORMAL_LIGHTS)
        for start in range(0, len(job.results) - group + 1, group):
            add(normal_map(job, [r.raw for r in job.results[start:start + group]]), start, "-iclight-normal")
    if job.values["extra_outputs"] and job.results:
        for image in extra_output_images(job, width, height):
            add(image, 0, "-iclight-input")
    processed.images[:] = images
    processed.infotexts[:] = infotexts


def normal_map(job: IcLightJob, relights: list[Image.Image]) -> Image.Image:
    """The normal map of one subject from its Left, Right, Bottom and Top relights."""
    arrays = [np.array(r.convert("RGB")) for r in relights]
    alpha = job.layout.fit_alpha(job.alphas[0], arrays[0].shape[1], arrays[0].shape[0])
    normals = normals_from_relights(*arrays, alpha=alpha, sigma=job.values["normal_sigma"])
    return Image.fromarray(normal_map_image(normals))


def extra_output_images(job: IcLightJob, width: int, height: int) -> list[Image.Image]:
    """The inputs as the model saw them, for the gallery."""
    images = [Image.fromarray(job.layout.fit(s, width, height)) for s in job.subjects]
    images += [Image.fromarray(m) for m in job.light_maps]
    if job.model.variant == "fbc":
        images += [Image.fromarray(b) for b in job.background_images(width, height)]
    return images
