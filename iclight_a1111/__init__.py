"""IC-Light for AUTOMATIC1111 stable-diffusion-webui.

Layers, each a subpackage, importing only the ones before it (`errors` and `progress` are for all):
`images` (pixels in, pixels out), `unet` (what changes the checkpoint's UNet), `generation` (one
generation, from arguments to results) and `webui`, the only one that imports A1111's `modules.*`.
See docs/architecture.md.
"""
