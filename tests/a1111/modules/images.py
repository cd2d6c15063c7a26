"""Mirrors modules/images.py (v1.10.1) line 624 on: `save_image(image, path, basename, seed, prompt, extension, info,
..., p, ..., suffix)`: the file goes into `path` as `NNNNN-<seed><suffix>.<extension>` (the default
name pattern), with the infotext in the PNG's "parameters" text chunk. The stand-in records each call."""
import os

from PIL import PngImagePlugin

saved = []


def save_image(image, path, basename, seed=None, prompt=None, extension="png", info=None, short_filename=False,
               no_prompt=False, grid=False, pnginfo_section_name="parameters", p=None, existing_info=None,
               forced_filename=None, suffix="", save_to_dirs=None):
    os.makedirs(path, exist_ok=True)
    number = len([f for f in os.listdir(path) if f[:5].isdigit()])
    fullfn = os.path.join(path, f"{number:05}-{seed}{suffix}.{extension}")
    pnginfo = PngImagePlugin.PngInfo()
    if info is not None:
        pnginfo.add_text(pnginfo_section_name, info)
    image.save(fullfn, pnginfo=pnginfo)
    saved.append((fullfn, info))
    return fullfn, None
