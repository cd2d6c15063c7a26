"""Pixels in, pixels out: light maps, placed lights, resize modes, background removal and fill,
composites, colour, detail, normals, and images into latents the way the IC-Light reference does."""
