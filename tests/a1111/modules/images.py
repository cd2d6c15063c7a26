"""Mirrors modules/images.py (v1.10.1): `resize_image`, `flatten`, `image_grid` (below), and from line 624 `save_image(image, path, basename, seed, prompt, extension, info,
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


def image_grid(imgs, batch_size):
    """v1.10.1 images.py `image_grid` (lines 35-67), simplified: all images in one row. The tests rely
    only on the grid being one more image, before the results."""
    cols, rows = len(imgs), 1
    w, h = imgs[0].size
    grid = Image.new("RGB", (cols * w, rows * h), color="black")
    for i, img in enumerate(imgs):
        grid.paste(img, box=(i % cols * w, i // cols * h))
    return grid
