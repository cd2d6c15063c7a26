"""Restore detail and reinforce foreground, on synthetic images, and in a generation."""
import numpy as np
import pytest

from generation_harness import img2img, pil, subject
from iclight_a1111.images.detail import gaussian_blur, reinforce_foreground, restore_detail


def checkerboard(h, w, cell=2):
    yy, xx = np.mgrid[:h, :w]
    return (((yy // cell) + (xx // cell)) % 2 * 80).astype(np.float64)


def high_pass(image, size=7):
    return image.astype(np.float64) - gaussian_blur(image, size)


def test_restore_detail_brings_back_detail_the_relight_lost():
    base = np.full((64, 64, 3), 100.0)
    original = (base + checkerboard(64, 64)[..., None]).astype(np.uint8)
    relit = (gaussian_blur(original, 9) * 0.7 + 40).round().astype(np.uint8)  # new light, detail gone
    restored = restore_detail(relit, original, 9)

    def correlation(a, b):
        a, b = high_pass(a).ravel(), high_pass(b).ravel()
        return float(np.corrcoef(a, b)[0, 1])

    assert correlation(relit, original) < 0.3, "the synthetic relight should have lost the pattern"
    assert correlation(restored, original) > 0.9, "restore detail did not bring the pattern back"
    assert abs(gaussian_blur(restored, 9).mean() - gaussian_blur(relit, 9).mean()) < 2, "the relit light was not kept"


def test_restore_detail_leaves_a_flat_image_unchanged():
    flat = np.full((40, 30, 3), 90, np.uint8)
    assert np.array_equal(restore_detail(flat, np.full((40, 30, 3), 200, np.uint8), 5), flat)


def test_blur_size_must_be_odd():
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(np.zeros((8, 8, 3)), 4)


def test_reinforce_changes_only_foreground_pixels():
    light = np.tile(np.linspace(255, 0, 32)[None, :, None], (32, 1, 3)).astype(np.uint8)
    foreground = np.full((32, 32, 3), 200, np.uint8)
    alpha = np.zeros((32, 32))
    alpha[8:24, 8:24] = 1.0
    alpha[8:24, 24] = 0.5
    out = reinforce_foreground(light, foreground, alpha)
    assert np.array_equal(out[alpha == 0], light[alpha == 0]), "background pixels of the light map changed"
    assert (out[alpha == 1] == 200).all()
    assert np.array_equal(out[alpha == 0.5], np.round((light[alpha == 0.5].astype(int) + 200) / 2).astype(np.uint8))


def run(p):
    from modules import processing

    return processing.process_images(p)


def test_each_result_is_restored_from_its_own_subject(a1111):
    p = img2img([{"enabled": True, "restore_detail": True, "detail_size": 3, "keep_raw": True}],
                [pil(subject(64, seed=1)), pil(subject(64, seed=2))], batch_size=2, steps=2, denoising_strength=0.9)
    result = run(p)
    assert len(result.images) == 4 and len(result.infotexts) == 4, "expected 2 results, then their 2 raw relights"
    for i in (0, 1):
        restored, relit = np.array(result.images[i]), np.array(result.images[i + 2])
        original = subject(64, seed=1 + i)
        assert np.array_equal(restored, restore_detail(relit, original, 3)), f"result {i} restored wrongly"
        assert result.infotexts[i] == result.infotexts[i + 2], f"raw relight {i} lost its result's infotext"
    assert p.extra_generation_params["IC-Light restore detail"] == "True"


def test_even_detail_size_is_refused(a1111):
    from iclight_a1111.errors import IcLightError

    with pytest.raises(IcLightError, match="detail blur size must be odd, got 4"):
        run(img2img([{"enabled": True, "restore_detail": True, "detail_size": 4}], [pil(subject())], steps=2))


def test_reinforced_light_map_carries_the_subject_where_its_alpha_is(a1111):
    person = subject(64, seed=3, alpha=True)
    p = img2img([{"enabled": True, "light": "Left", "reinforce_foreground": True, "extra_outputs": True}],
                [pil(person)], steps=2, denoising_strength=0.9)
    light_map = np.array(run(p).images[2])
    inside, outside = person[..., 3] == 255, person[..., 3] == 0
    assert (np.abs(light_map[inside].astype(int) - person[..., :3][inside]) <= 1).all()
    plain = np.tile(np.linspace(255, 0, 64)[None, :, None], (64, 1, 3)).astype(np.uint8)
    assert np.array_equal(light_map[outside], plain[outside])


def test_reinforce_without_alpha_is_refused(a1111):
    from iclight_a1111.errors import IcLightError

    with pytest.raises(IcLightError, match="Reinforce foreground' needs to know where the subject is"):
        run(img2img([{"enabled": True, "reinforce_foreground": True}], [pil(subject())], steps=2))
