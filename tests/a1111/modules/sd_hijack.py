"""Mirrors modules/sd_hijack.py (v1.10.1) lines 41-42: ldm's `UNetModel.forward` is replaced, at
import, by the router to the active SdUnet; the original is kept as `ldm_original_forward`."""
import ldm.modules.diffusionmodules.openaimodel as openaimodel

from modules import sd_unet

ldm_original_forward = openaimodel.UNetModel.forward
openaimodel.UNetModel.forward = sd_unet.create_unet_forward(ldm_original_forward)
