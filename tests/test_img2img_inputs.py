"""img2img as A1111 users run it: the Batch tab, inpaint masks, colour correction, RGBA from the image
box; and the images IC-Light adds, saved like results."""
import numpy as np
import pytest
import torch
from PIL import Image

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.generation.job import JOB_ATTR


def test_dict_without_enabled_relights(a1111):
    from modules import processing

    p = txt2img([{"foreground": subject()}], steps=2)
    processing.process_images(p)
    assert p.extra_generation_params["IC-Light model"] == "iclight_sd15_fc.safetensors"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_batch_tab_relights_every_file_with_a_normal_map(a1111, batch_size):
    """The Batch tab (stand-in of modules/img2img.py `process_batch`) gives each file as
    `[img] * p.batch_size`, before `before_process` raises the batch to four: at any batch size each
    file gets its four relights, from one seed, and its normal map."""
    from modules import img2img as webui_img2img

    p = img2img([{"enabled": True, "normal_map": True}], None, batch_size=batch_size, steps=2, denoising_strength=0.9)
    images, infotexts = webui_img2img.process_batch(p, [pil(subject(seed=1)), pil(subject(seed=2))])
    assert len(images) == 10, f"batch size {batch_size}: {len(images)} images, expected 4 relights + normal map per file"
    for file in range(2):
        seeds = {text.partition(",")[0] for text in infotexts[file * 5:file * 5 + 4]}
        assert len(seeds) == 1, f"file {file + 1}: the four relights have seeds {seeds}, not one"


def masked_img2img(a1111, **kwargs):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # inpaint the left half
    picture = subject(seed=4)
    return picture, img2img([{"enabled": True, "light": "Right"}], [pil(picture)], mask=mask, steps=3,
                            denoising_strength=0.9, **kwargs)


def test_inpaint_mask_overlay_and_colour_correction_come_from_the_users_picture(a1111, monkeypatch):
    from modules import processing, shared

    monkeypatch.setattr(shared.opts, "img2img_color_correction", True)
    picture, p = masked_img2img(a1111)
    processed = processing.process_images(p)
    resized = np.array(pil(picture).resize((64, 64), Image.LANCZOS))
    assert all(np.array_equal(c, resized) for c in p.color_corrections), "colour correction built from the light map"
    overlay = np.array(p.overlay_images[0])
    assert np.array_equal(overlay[:, 32:, :3], resized[:, 32:]), "overlay built from the light map"
    picture_latent = getattr(p, JOB_ATTR).picture_latent  # A1111's latent of the picture (a posterior sample)
    assert torch.equal(processed.latents[..., 4:], picture_latent[..., 4:]), "the unmasked area is not the user's picture"
    assert not torch.equal(processed.latents[..., :4], picture_latent[..., :4]), "the masked area was not relit"


def test_n_iter_batches_reuse_one_routing_on_img2imgs_single_sampler(a1111):
    from modules import processing

    from iclight_a1111.unet.row_alignment import ROUTED_LATENTS

    p = img2img([{"enabled": True}], [pil(subject())], steps=2, n_iter=3, denoising_strength=0.9)
    processing.process_images(p)
    forward = p.sampler.model_wrap_cfg.forward
    assert hasattr(forward, ROUTED_LATENTS) and not hasattr(forward.__wrapped__, ROUTED_LATENTS), "wrappers nested"


def test_added_images_are_saved_like_results_with_their_infotext(a1111, tmp_path):
    from modules import images, processing, shared

    images.saved.clear()
    p = img2img([{"enabled": True, "normal_map": True, "restore_detail": True, "extra_outputs": True, "keep_raw": True}],
                [pil(subject())], steps=2, denoising_strength=0.9, outpath_samples=str(tmp_path / "out"))
    processed = processing.process_images(p)
    names = sorted(path.rsplit("-", 1)[-1] for path, _ in images.saved)
    seeds = sorted(f"{s}.png" for s in p.all_seeds)
    assert names == sorted(seeds + ["input.png"] * 5 + ["normal.png"] + ["raw.png"] * 4), names
    assert all("IC-Light model: iclight_sd15_fc.safetensors" in info for _, info in images.saved)
    assert len(processed.images) == 4 + 4 + 1 + 5
    for (path, _), result in zip(images.saved[:4], processed.images[:4]):
        assert np.array_equal(np.array(Image.open(path)), np.array(result)), "the saved result is not the restored one"

    images.saved.clear()
    shared.opts.samples_save = False
    try:
        processing.process_images(img2img([{"enabled": True, "restore_detail": True}], [pil(subject())], steps=2,
                                          denoising_strength=0.9, outpath_samples=str(tmp_path / "out")))
    finally:
        shared.opts.samples_save = True
    assert images.saved == [], "saved although saving is off in the settings"
