"""Mirrors modules/images.py (v1.10.1): `resize_image`, `flatten`, `image_grid` (below, with the
`image_grid` callbacks), and from line 624 `save_image(image, path, basename, seed, prompt, extension, info,
..., p, ..., suffix)`: the file goes into `path` as `NNNNN-<seed><suffix>.<extension>` (the default
name pattern), with the infotext in the PNG's "parameters" text chunk; JPEG and WebP lose an RGBA image's
alpha. The stand-in records each call."""
import os

from PIL import Image, PngImagePlugin

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
    if extension.lower() in ("jpg", "jpeg", "webp") and image.mode == "RGBA":
        image = image.convert("RGB")  # lines 591-593: these formats are saved without alpha
    image.save(fullfn, pnginfo=pnginfo)
    saved.append((fullfn, info))
    return fullfn, None


def resize_image(resize_mode, im, width, height, upscaler_name=None):
    """v1.10.1 images.py lines 252-321 with no img2img upscaler set (the default): every resize is LANCZOS.
    0 stretches; 1 scales to cover and centres (cropping); any other mode (2, and 3 when called with it)
    scales to fit, centres, and stretches the outermost rows/columns over the empty bands. Modes 1 and
    2 paste onto a new RGB image."""
    if resize_mode == 0:
        return im.resize((width, height), resample=Image.LANCZOS)
    ratio, src_ratio = width / height, im.width / im.height
    if resize_mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
    else:
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=Image.LANCZOS)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if resize_mode != 1:
        if ratio < src_ratio:
            fill = height // 2 - src_h // 2
            if fill > 0:
                res.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
                res.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)), box=(0, fill + src_h))
        elif ratio > src_ratio:
            fill = width // 2 - src_w // 2
            if fill > 0:
                res.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
                res.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)), box=(fill + src_w, 0))
    return res


def flatten(img, bgcolor):
    """v1.10.1 images.py lines 840-848: RGBA composited over `bgcolor`, then RGB."""
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert("RGB")


def image_grid(imgs, batch_size=1, rows=None):
    """v1.10.1 images.py lines 36-66 (processing.py ~1120 for a batch's grid, scripts/xyz_grid.py ~377
    and ~387 for X/Y/Z's): rows from `opts.n_rows` (-1: the square root, rounded), the
    `image_grid` callbacks may replace `params.imgs`, then each image is pasted, without a mask, onto
    an RGB canvas of `opts.grid_background_color`: an RGBA image shows its colour channels, alpha
    ignored."""
    import math

    from PIL import ImageColor

    from modules import script_callbacks, shared

    if rows is None:
        rows = shared.opts.n_rows if shared.opts.n_rows > 0 else batch_size if shared.opts.n_rows == 0 else round(math.sqrt(len(imgs)))
    rows = min(rows, len(imgs))
    cols = math.ceil(len(imgs) / rows)
    params = script_callbacks.ImageGridLoopParams(imgs, cols, rows)
    script_callbacks.image_grid_callback(params)
    w, h = map(max, zip(*(img.size for img in imgs)))
    grid = Image.new("RGB", (params.cols * w, params.rows * h), color=ImageColor.getcolor(shared.opts.grid_background_color, "RGB"))
    for i, img in enumerate(params.imgs):
        grid.paste(img, box=(i % params.cols * w + (w - img.width) // 2, i // params.cols * h + (h - img.height) // 2))
    return grid
