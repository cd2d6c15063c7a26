"""Mirrors modules/txt2img.py (v1.10.1) `txt2img_upscale` (lines 57-91), the *Upscale* button under a
txt2img result: the panel's settings with hires. fix forced on, batch size and count 1,
`p.txt2img_upscale`, the chosen gallery image (read back from its file: a PNG with alpha stays RGBA)
as `p.firstpass_image`, the seed of its infotext; run inside `closing(p)`.

Departure: the gallery image and its seed are passed in."""
from contextlib import closing

from modules import processing


def txt2img_upscale(p, gallery_image, seed):
    p.enable_hr = True
    p.batch_size = 1
    p.n_iter = 1
    p.txt2img_upscale = True
    p.firstpass_image = gallery_image
    p.seed = seed
    with closing(p):
        return processing.process_images(p)
