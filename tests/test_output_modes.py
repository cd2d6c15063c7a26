"""Output modes, colour preservation and the after-sampling order, on synthetic images."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.generation.after_sampling import processed_result
from iclight_a1111.images.background_fill import background_without_subject
from iclight_a1111.images.color_preservation import preserve_color, to_ycbcr
from iclight_a1111.images.composite import over_picture, transparent
from iclight_a1111.images.detail import restore_detail
from iclight_a1111.errors import IcLightError
from iclight_a1111.generation.job import IcLightJob
from iclight_a1111.unet.model_files import ModelFile
from iclight_a1111.generation.params import defaults
from iclight_a1111.images.resize_modes import REFERENCE

SUBJECT_COLOUR, BACKGROUND_COLOUR, RIM, GREY = (40, 60, 220), (30, 120, 40), (255, 255, 255), (127, 127, 127)


def disc_alpha(size=64, radius=20, edge=4):
    """A disc: 1 inside, a linear edge `edge` pixels wide, 0 outside; in 8-bit steps, as alphas travel."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    return (np.clip((radius - distance) / edge, 0, 1) * 255).round().astype(np.float32) / 255


def rimmed_scene(alpha):
    """The picture as the user gave it: a red subject under its old light (a white rim all along its
    edge) on a green background; and the relit result: the new colour on the grey backdrop."""
    picture = np.where((alpha > 0)[..., None], (200, 40, 40), BACKGROUND_COLOUR).astype(np.uint8)
    picture[(alpha > 0) & (alpha < 1)] = RIM
    a = alpha[..., None]
    relit = (np.array(SUBJECT_COLOUR) * a + np.array(GREY) * (1 - a)).round().astype(np.uint8)
    return picture, relit


def test_composite_is_the_relit_subject_inside_and_the_picture_outside():
    alpha = disc_alpha()
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    relit = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = over_picture(relit, alpha, picture)
    assert np.array_equal(out[alpha == 1], relit[alpha == 1]), "the subject is not the relit image where alpha is 1"
    assert np.array_equal(out[alpha == 0], picture[alpha == 0]), "the background is not the picture where alpha is 0"


def distance_to_segment(pixels, a, b):
    a, b = np.array(a, float), np.array(b, float)
    t = np.clip(((pixels - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(pixels - (a + t[:, None] * (b - a)), axis=1)


def test_composite_edge_has_no_halo_of_the_old_light_or_the_grey_backdrop():
    alpha = disc_alpha()
    picture, relit = rimmed_scene(alpha)
    out = over_picture(relit, alpha, picture)
    edge = (alpha > 0) & (alpha < 1)
    off = distance_to_segment(out[edge].astype(float), SUBJECT_COLOUR, BACKGROUND_COLOUR)
    assert off.max() <= 2, f"edge pixels leave the subject-background blend by {off.max():.1f} (rim or grey halo)"
    naive = alpha[..., None] * relit + (1 - alpha[..., None]) * picture
    assert distance_to_segment(naive[edge], SUBJECT_COLOUR, BACKGROUND_COLOUR).max() > 30, "the test scene has no halo to avoid"


def test_light_the_background_zero_leaves_it_and_one_shades_it_by_the_light_map():
    from iclight_a1111.images.composite import background_shading
    from iclight_a1111.images.light_maps import fc_light_map

    alpha, picture = disc_alpha(), np.full((64, 64, 3), 200, np.uint8)
    relit = np.full((64, 64, 3), 90, np.uint8)
    light = fc_light_map("Left", 64, 64, (255,) * 3, (0,) * 3, 1.0)
    untouched = over_picture(relit, alpha, picture, background_shading(light, 0.0))
    assert np.array_equal(untouched[alpha == 0], picture[alpha == 0])
    shaded = over_picture(relit, alpha, picture, background_shading(light, 1.0))
    assert shaded[0, 0, 0] == 200 and shaded[0, -1, 0] == 0, "the background does not follow the light map"
    assert np.array_equal(shaded[alpha == 1], relit[alpha == 1]), "shading the background touched the subject"


def test_filled_background_has_none_of_the_subjects_colours_inside_its_area():
    alpha = disc_alpha()
    rng = np.random.default_rng(1)
    picture = np.dstack([rng.integers(0, 60, (64, 64)), rng.integers(80, 160, (64, 64)), rng.integers(0, 60, (64, 64))])
    picture[alpha > 0] = (250, 10, 200)  # the subject's colour, far from the background's
    filled = background_without_subject(picture.astype(np.uint8), alpha)
    inside = filled[alpha > 0].astype(int)
    assert inside[:, 0].max() < 60 and inside[:, 2].max() < 60 and inside[:, 1].min() >= 80, \
        "the subject's colour is left inside the filled area"


def chroma_error(image, subject_image, inside):
    return np.abs(to_ycbcr(image)[inside][:, 1:] - to_ycbcr(subject_image)[inside][:, 1:]).mean()


def test_colour_preservation_brings_the_chroma_back_monotonically_and_keeps_the_relit_luminance():
    rng = np.random.default_rng(2)
    subject_image = np.dstack([rng.integers(60, 200, (32, 32)) for _ in range(3)]).astype(np.uint8)
    tint = np.array([1.0, 0.55, 0.3])  # a strongly orange light
    relit = (subject_image * tint).round().clip(0, 255).astype(np.uint8)
    alpha = np.zeros((32, 32), np.float32)
    alpha[4:28, 4:28] = 1
    inside = alpha == 1
    errors = []
    for strength in np.linspace(0, 1, 6):
        out = preserve_color(relit, subject_image, alpha, float(strength))
        errors.append(chroma_error(out, subject_image, inside))
        luminance = np.abs(to_ycbcr(out)[..., 0] - to_ycbcr(relit)[..., 0])
        assert luminance.max() <= 1.5, f"strength {strength}: the luminance moved by {luminance.max():.2f}"
        assert np.array_equal(out[~inside], relit[~inside]), "colour changed outside the subject's alpha"
    assert all(b < a for a, b in zip(errors, errors[1:])), f"chroma error does not fall monotonically: {errors}"
    assert errors[-1] < 1.0 and errors[0] > 10, errors


def job_for(values, alpha, inputs, pictures, variant="fc"):
    return IcLightJob({**defaults(), **values}, ModelFile(Path(f"iclight_sd15_{variant}.safetensors"), variant),
                      inputs, [alpha], REFERENCE, pictures)


def test_detail_then_colour_then_composite():
    alpha = disc_alpha()
    picture, relit = rimmed_scene(alpha)
    rng = np.random.default_rng(3)
    subject_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    values = {"restore_detail": True, "detail_size": 5, "preserve_color": 0.7, "output": "Original background"}
    out = processed_result(job_for(values, alpha, [subject_image], [picture]), relit, 0)
    detail = restore_detail(relit, subject_image, 5)
    expected = over_picture(preserve_color(detail, subject_image, alpha, 0.7), alpha, picture)
    assert np.array_equal(out, expected), "the steps did not run as detail, then colour, then composite"
    swapped = over_picture(restore_detail(preserve_color(relit, subject_image, alpha, 0.7), subject_image, 5), alpha, picture)
    assert not np.array_equal(swapped, expected), "the order test cannot tell the orders apart"


def test_transparent_result_keeps_the_alpha_and_drops_the_backdrop():
    alpha = disc_alpha()
    _, relit = rimmed_scene(alpha)
    rgba = transparent(relit, (alpha * 255).round().astype(np.uint8))
    assert np.array_equal(rgba[..., 3], (alpha * 255).round().astype(np.uint8))
    edge = (alpha > 0) & (alpha < 1)
    assert np.abs(rgba[edge][:, :3].astype(int) - SUBJECT_COLOUR).max() <= 1, "grey backdrop left in the edge colours"


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_transparent_alpha_is_the_subjects_alpha_fitted_as_a1111_fits_its_picture(a1111, tmp_path, mode):
    from modules import images, processing

    rgba = subject(96, seed=5, alpha=True)[8:80]  # 96 wide, 72 high
    p = img2img([{"enabled": True, "light": "None", "output": "Transparent"}], [pil(rgba)], steps=2,
                denoising_strength=0.9, resize_mode=mode, width=64, height=128, outpath_samples=str(tmp_path))
    processed = processing.process_images(p)
    result = processed.images[0]
    assert result.mode == "RGBA", "the transparent result has no alpha"
    expected = np.array(images.resize_image(0 if mode == 3 else mode, Image.fromarray(rgba[..., 3]), 64, 128).convert("L"))
    assert np.array_equal(np.array(result)[..., 3], expected), f"mode {mode}: the alpha is not fitted like A1111's picture"
    saved = Image.open(images.saved[-1][0])
    assert saved.mode == "RGBA" and np.array_equal(np.array(saved), np.array(result)), "the PNG lost the alpha"


def test_transparent_output_in_a_format_without_alpha_is_flattened_on_grey_with_one_note(a1111, monkeypatch, capsys, tmp_path):
    from modules import processing, shared

    from iclight_a1111.images.composite import on_grey

    monkeypatch.setattr(shared.opts, "samples_format", "jpg")
    p = txt2img([{"enabled": True, "foreground": subject(64, alpha=True), "output": "Transparent", "keep_raw": True}],
                batch_size=2, steps=2, outpath_samples=str(tmp_path))
    processed = processing.process_images(p)
    assert [i.mode for i in processed.images[:2]] == ["RGB", "RGB"]
    assert capsys.readouterr().out.count("cannot hold the transparent output's alpha") == 1
    raw = np.array(processed.images[2])
    rgba = transparent(raw, np.array(Image.fromarray(subject(64, alpha=True)[..., 3])))
    assert np.array_equal(np.array(processed.images[0]), on_grey(rgba)), "not flattened on grey"


@pytest.mark.parametrize("output", ["Original background", "Transparent"])
def test_outputs_needing_an_alpha_refuse_a_subject_without_one(a1111, output):
    from modules import processing

    with pytest.raises(IcLightError, match=f"'Output: {output}' needs to know where the subject is: turn on 'Remove background'"):
        processing.process_images(img2img([{"enabled": True, "output": output}], [pil(subject())], steps=2))


def test_original_picture_background_refuses_without_alpha_and_fills_the_subject_area(a1111, monkeypatch):
    from modules import processing

    from iclight_a1111.webui import host as webui_host

    with pytest.raises(IcLightError, match="'Background: Original picture' needs to know where the subject is"):
        processing.process_images(img2img([{"enabled": True, "model": "iclight_sd15_fbc.safetensors",
                                            "background_source": "Original picture"}], [pil(subject())], steps=2))
    calls = []
    encode = webui_host.encode_images
    monkeypatch.setattr(webui_host, "encode_images", lambda images: calls.append(images) or encode(images))
    rgba = subject(64, seed=6, alpha=True)
    processing.process_images(img2img([{"enabled": True, "model": "iclight_sd15_fbc.safetensors",
                                        "background_source": "Original picture"}], [pil(rgba)], steps=2,
                                      denoising_strength=0.9))
    background = np.array(calls[1][0])
    subject_rgb = rgba[..., :3][rgba[..., 3] == 255][0]
    inside = background[rgba[..., 3] > 0]
    assert not (inside == subject_rgb).all(axis=1).any(), "the subject's colour is left in the background condition"


def test_original_background_in_img2img_puts_the_relit_subject_into_the_users_picture(a1111):
    from modules import processing

    rgba = subject(64, seed=7, alpha=True)
    p = img2img([{"enabled": True, "output": "Original background", "keep_raw": True}], [pil(rgba)], steps=2,
                denoising_strength=0.9)
    processed = processing.process_images(p)
    result, raw = np.array(processed.images[0]), np.array(processed.images[1])
    alpha = rgba[..., 3]
    picture = np.array(Image.alpha_composite(Image.new("RGBA", (64, 64), "#ffffff"), pil(rgba)).convert("RGB"))
    assert np.array_equal(result[alpha == 255], raw[alpha == 255]), "the subject is not the relit one"
    assert np.array_equal(result[alpha == 0], picture[alpha == 0]), "the background is not A1111's picture"
    assert p.extra_generation_params["IC-Light output"] == "Original background"


def test_transparent_output_after_hires_fix_has_the_alpha_at_the_hires_size(a1111, tmp_path):
    from modules import processing

    from iclight_a1111.images.resize_modes import REFERENCE

    rgba = subject(64, seed=8, alpha=True)
    p = txt2img([{"enabled": True, "foreground": rgba, "output": "Transparent"}], batch_size=2, steps=2,
                enable_hr=True, hr_scale=2.0, outpath_samples=str(tmp_path))
    processed = processing.process_images(p)
    expected = REFERENCE.fit(rgba[..., 3], 128, 128)
    for result in processed.images:
        assert result.size == (128, 128) and result.mode == "RGBA"
        assert np.array_equal(np.array(result)[..., 3], expected), "the alpha is not the subject's at the hires size"


def test_each_picture_of_an_img2img_batch_gets_its_own_relit_subject_back(a1111):
    from modules import processing

    pictures = [subject(64, seed=9, alpha=True), subject(64, seed=10, alpha=True)]
    p = img2img([{"enabled": True, "output": "Original background", "keep_raw": True}], [pil(i) for i in pictures],
                batch_size=2, steps=2, denoising_strength=0.9)
    processed = processing.process_images(p)
    for i, picture in enumerate(pictures):
        result, raw, alpha = np.array(processed.images[i]), np.array(processed.images[2 + i]), picture[..., 3]
        assert np.array_equal(result[alpha == 255], raw[alpha == 255]), f"result {i}: not its own relit subject"
        white = np.array(Image.alpha_composite(Image.new("RGBA", (64, 64), "#ffffff"), pil(picture)).convert("RGB"))
        assert np.array_equal(result[alpha == 0], white[alpha == 0]), f"result {i}: not over its own picture"


@pytest.mark.parametrize("image_format", ["png", "jpg"])
def test_api_sends_the_transparent_alpha_as_png_and_grey_flattened_otherwise(a1111, monkeypatch, tmp_path, image_format):
    import base64
    import io

    from modules import processing, shared
    from modules.api.api import encode_pil_to_base64

    monkeypatch.setattr(shared.opts, "samples_format", image_format)
    rgba = subject(64, seed=11, alpha=True)
    p = img2img([{"enabled": True, "output": "Transparent"}], [pil(rgba)], steps=2, denoising_strength=0.9,
                outpath_samples=str(tmp_path))
    processed = processing.process_images(p)
    sent = Image.open(io.BytesIO(base64.b64decode(encode_pil_to_base64(processed.images[0]))))
    if image_format == "png":
        assert sent.mode == "RGBA" and np.array_equal(np.array(sent)[..., 3], rgba[..., 3]), "the API lost the alpha"
        assert "IC-Light output: Transparent" in sent.info["parameters"]
    else:
        assert sent.mode == "RGB"
        corner = np.array(sent)[:8, :8].astype(int)  # far from the subject, away from JPEG's edge ringing
        assert np.abs(corner - 127).max() <= 3, "the background is not the grey the result was flattened on"
