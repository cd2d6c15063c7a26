"""txt2img's *Upscale* button (v1.10.1 txt2img.py `txt2img_upscale`, processing.py 1310-1330): the
chosen result is the first pass, no first pass is sampled and its hook does not run; the hires pass
runs relit or plain as *Hires pass* says, and a transparent (RGBA) result is flattened as A1111
flattens pictures."""
import numpy as np
import pytest

from generation_harness import subject, txt2img
from test_hires_checkpoint import UnetCalls, switches  # noqa: F401 (a fixture)

SETTINGS = {"enabled": True, "foreground": subject(alpha=True)}


def upscale(a1111, first_pass, upscaler="Lanczos", hr_checkpoint_name=None, **values):
    """Press *Upscale* under `first_pass` with these panel settings; the UNet calls of the checkpoint in use."""
    from modules import txt2img as webui_txt2img

    p = txt2img([{**SETTINGS, **values}], steps=2, hr_scale=2.0, hr_upscaler=upscaler, hr_checkpoint_name=hr_checkpoint_name)
    calls = UnetCalls()
    calls.watch_unet("in use", a1111.unet)
    processed = webui_txt2img.txt2img_upscale(p, first_pass, seed=3)
    return p, processed, calls.calls


def a_result(a1111, **values):
    from modules import processing

    return processing.process_images(txt2img([{**SETTINGS, **values}], steps=2)).images[0]


@pytest.mark.parametrize("hires_pass, relit", [("Automatic", True), ("On", True), ("Off", False)])
def test_upscale_runs_the_hires_pass_relit_or_plain_as_hires_pass_says(a1111, hires_pass, relit):
    from modules import sd_unet

    _, processed, calls = upscale(a1111, a_result(a1111), hires_pass=hires_pass)
    assert processed.images[0].size == (128, 128)
    assert calls, "no hires pass ran"
    assert all(active == relit for _, active in calls), \
        f"Hires pass {hires_pass}: the hires pass did not run {'with' if relit else 'without'} IC-Light"
    assert sd_unet.current_unet is None, "IC-Light was left on"


@pytest.mark.parametrize("limit", [1, 2])
def test_upscale_with_another_hires_checkpoint_refines_plainly(a1111, switches, monkeypatch, limit):
    """With two checkpoints kept loaded A1111 switches without `apply_unet("None")`: IC-Light must not
    be on then, or the hires checkpoint's UNet runs IC-Light's without latents."""
    from modules import shared

    monkeypatch.setattr(shared.opts, "sd_checkpoints_limit", limit)
    other = UnetCalls()
    a1111.add_checkpoint("other-sd15", seed=5, on_load=other.watch("other"))
    result = a_result(a1111)
    _, _, calls = upscale(a1111, result, hr_checkpoint_name="other-sd15")
    (switch,) = switches
    assert switch["sd_unet"] is None, "IC-Light was on when A1111 loaded the hires checkpoint"
    calls += other.calls  # one model takes the other weights (limit 1), or a second model is built
    assert calls and not any(active for _, active in calls), "the hires checkpoint did not refine plainly"


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos", "None"])
def test_upscale_of_a_transparent_result_flattens_it_as_a1111_flattens_pictures(a1111, upscaler):
    from modules import images, shared

    transparent = a_result(a1111, output="Transparent")
    assert transparent.mode == "RGBA"
    p, processed, calls = upscale(a1111, transparent, upscaler=upscaler)
    assert processed.images[0].size == (128, 128) and calls
    flattened = images.flatten(transparent, shared.opts.img2img_background_color)
    assert p.firstpass_image.mode == "RGB" and np.array_equal(np.array(p.firstpass_image), np.array(flattened)), \
        "the first pass is not the transparent result flattened on the img2img background colour"


def test_upscale_of_a_transparent_result_with_iclight_switched_off(a1111):
    """The transparent result came from IC-Light; upscaling it plainly works too."""
    from modules import images, shared

    transparent = a_result(a1111, output="Transparent")
    p, processed, calls = upscale(a1111, transparent, upscaler="Latent", enabled=False)
    assert processed.images[0].size == (128, 128) and calls and not any(active for _, active in calls)
    assert np.array_equal(np.array(p.firstpass_image), np.array(images.flatten(transparent, shared.opts.img2img_background_color)))
