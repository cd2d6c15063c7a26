"""The infotext records what the generation did: no "Masked content" where every inpainted latent
started from IC-Light's light map instead, no "IC-Light hires pass" without a hires pass."""
import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, subject, txt2img

MASKED_CONTENT = {0: "fill", 2: "latent noise", 3: "latent nothing"}


def inpaint(fill, light="Right", **kwargs):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    return img2img([{"enabled": True, "light": light}], [pil(subject(seed=4))], mask=mask, steps=2,
                   denoising_strength=0.9, inpainting_fill=fill, **kwargs)


def every_record(p, processed):
    from modules import processing

    return {"generation parameters": p.extra_generation_params, "params.txt": processing.params_txt,
            "result": processed.infotexts[0]}


@pytest.mark.parametrize("fill", sorted(MASKED_CONTENT))
def test_no_masked_content_where_the_light_map_replaced_the_masked_start(a1111, fill):
    """v1.10.1 processing.py 1694-1756 writes "Masked content" in `init`; IC-Light then replaces the
    whole inpainted latent by the light map's (a rounded mask: no band kept from A1111's start)."""
    from modules import processing

    p = inpaint(fill)
    processed = processing.process_images(p)
    for where, record in every_record(p, processed).items():
        assert "Masked content" not in str(record), f"{where} says 'Masked content: {MASKED_CONTENT[fill]}', " \
                                                    "but the masked area started from the light map"


def test_masked_content_stays_where_a1111s_start_was_used(a1111):
    """Light None relights A1111's own start; a soft mask's feathered band starts from A1111's
    (treated) latent too: there the choice shaped the result, and the infotext says so."""
    from modules import processing

    p = inpaint(2, light="None")
    processed = processing.process_images(p)
    assert "Masked content: latent noise" in processed.infotexts[0], "Light None: the masked start used is not recorded"

    feathered = Image.fromarray(np.tile(np.linspace(255, 0, 64).astype(np.uint8), (64, 1)))
    p = img2img([{"enabled": True, "light": "Right"}], [pil(subject(seed=4))], mask=feathered, mask_round=False,
                steps=2, denoising_strength=0.9, inpainting_fill=2)
    processed = processing.process_images(p)
    assert "Masked content: latent noise" in processed.infotexts[0], "the soft band's start is not recorded"


@pytest.mark.parametrize("choice", ["On", "Off"])
def test_no_hires_pass_entry_without_hires_fix(a1111, choice):
    from modules import processing

    p = txt2img([{"enabled": True, "foreground": subject(), "hires_pass": choice}], steps=2)
    processed = processing.process_images(p)
    assert "IC-Light hires pass" not in processed.infotexts[0], \
        f"'IC-Light hires pass: {choice}' written for a generation without hires. fix"
