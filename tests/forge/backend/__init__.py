"""Stands in for Forge's `backend` package (lllyasviel/stable-diffusion-webui-forge at dfdcbab6, 2025-06-26):
the parts IC-Light's forge layer and a Forge generation use, each module naming the file and lines it
mirrors. The UNet inside is ldm's `UNetModel`: Forge's `IntegratedUNet2DConditionModel` (backend/nn/unet.py)
has its parameter names and computes the same; the live Forge runs the real one."""
