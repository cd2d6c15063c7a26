"""Soft inpainting (the built-in extension, stand-in `tests/a1111/soft_inpainting.py`) with a relit
inpaint: its pixel composite pastes the picture back where the samples differ little from
`p.init_latent`; the inpainted core, which started from the light map, shows the relit result for
every soft-inpainting setting."""
import numpy as np
import pytest
import torch
from PIL import Image

from generation_harness import embeddings, pil, script_module, subject
from iclight_a1111.generation.job import JOB_ATTR
from iclight_a1111.generation.params import PARAMS

SETTINGS = {  # power, scale, detail, mask influence, difference threshold, difference contrast
    "defaults": (1.0, 0.5, 4.0, 0.0, 0.5, 2.0),
    "contrast 0": (1.0, 0.5, 4.0, 0.0, 0.5, 0.0),
    "threshold 8": (1.0, 0.5, 4.0, 0.0, 8.0, 2.0),
    "mask influence 1": (1.0, 0.5, 4.0, 1.0, 0.5, 2.0),
    "scale 0, threshold 8": (1.0, 0.0, 4.0, 0.0, 8.0, 8.0),
}


class RecordingSoftInpainting:
    """Soft inpainting as A1111 runs it, recording the latent its composite compares the samples with."""

    def __new__(cls):
        from soft_inpainting import SoftInpaintingScript

        class Recording(SoftInpaintingScript):
            compared_with = None

            def post_sample(self, p, ps, *args):
                self.compared_with = p.init_latent.clone()
                super().post_sample(p, ps, *args)

        return Recording()


def soft_inpaint(settings, light="Right"):
    """img2img with a mask over the left half, blurred (A1111's default blur 4): soft inpainting first
    (A1111 loads built-in extensions first), then IC-Light."""
    from modules.processing import StableDiffusionProcessingImg2Img
    from modules.scripts import ScriptRunner

    soft = RecordingSoftInpainting()
    iclight = script_module().IcLightScript()
    soft.args_from, soft.args_to = 0, 7
    iclight.args_from, iclight.args_to = 7, 7 + len(PARAMS)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    cond, uncond = embeddings(1)
    p = StableDiffusionProcessingImg2Img(
        cond=cond, uncond=uncond, scripts=ScriptRunner([soft, iclight]), script_args=(True, *settings, {"enabled": True, "light": light}),
        init_images=[pil(subject(seed=4))], mask=mask, mask_blur=4, steps=3, denoising_strength=0.9)
    return p, soft


def decoded(latents):
    from modules import shared

    pixels = ((shared.sd_model.decode_first_stage(latents) + 1) / 2).clamp(0, 1)
    return (pixels[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_inpainted_core_shows_the_relit_result(a1111, name):
    from modules import processing

    p, _ = soft_inpaint(SETTINGS[name])
    processed = processing.process_images(p)
    assert not p.mask_round, "soft inpainting did not run"
    core = np.kron((p.nmask[0] >= 1).numpy(), np.ones((8, 8))).astype(bool)
    core[:, 16:] = False  # away from the band: the latent core's last column blends into it
    relit, result = decoded(processed.latents), np.array(processed.images[0])
    assert core.any()
    differs = np.abs(result[core].astype(int) - relit[core]).max()
    assert differs <= 1, f"{name}: the inpainted core shows the picture pasted back (up to {differs} levels off the relit result)"


def test_soft_inpainting_compares_the_samples_with_the_picture(a1111):
    """The composite pastes the picture back where the samples are close to the latent it compares
    with: that latent is the picture's, not the light map IC-Light started the core from."""
    from modules import processing

    p, soft = soft_inpaint(SETTINGS["defaults"])
    processing.process_images(p)
    picture_latent = getattr(p, JOB_ATTR).picture_latent
    assert soft.compared_with is not None and torch.equal(soft.compared_with, picture_latent), \
        "soft inpainting compared the relit samples with the light map's latent, not the picture's"


def test_plain_inpainting_keeps_a1111s_own_overlay(a1111):
    """Without soft inpainting the overlay is A1111's (the picture where the blurred mask is under half)."""
    from modules import processing

    p, _ = soft_inpaint(SETTINGS["defaults"])
    p.script_args = (False, *p.script_args[1:])
    processed = processing.process_images(p)
    assert p.mask_round
    expected = processing.apply_overlay(Image.fromarray(decoded(processed.latents)), p.overlay_images[0])[0]
    differs = np.abs(np.array(processed.images[0]).astype(int) - np.array(expected)).max()
    assert differs <= 1, f"the overlay of plain inpainting was changed (up to {differs} levels)"
