"""End to end: A1111's processing order, the IC-Light script's hooks, the tiny real LatentDiffusion and
k-diffusion's Euler sampler, against the reference algorithm with the same sigmas, noise and weights."""
import numpy as np
import pytest
import torch

from generation_harness import embeddings, img2img, pil, subject, txt2img
from iclight_a1111.errors import IcLightError
from iclight_a1111.images.vae_encoding import composite_on_grey
from reference_pipeline import ReferencePipeline, reference_fc_left_light


def run(p):
    from modules import processing, sd_unet

    result = processing.process_images(p)
    assert sd_unet.current_unet is None, "IC-Light UNet still active after the generation"
    return result


def noise(shape, seeds):
    from modules.processing import image_noise

    return image_noise(shape, seeds)


def test_img2img_fc_with_left_light_matches_reference(a1111, report):
    person = subject(64, seed=1)
    p = img2img([{"enabled": True, "model": "iclight_sd15_fc.safetensors", "light": "Left"}], [pil(person)],
                batch_size=2, width=64, height=64, steps=4, denoising_strength=0.9, cfg_scale=2.0)
    ours = run(p).latents

    ref = ReferencePipeline(a1111.sd_model, a1111.model_dir / "iclight_sd15_fc.safetensors")
    sigmas = ref.sigmas(4)[4 - int(0.9 * 4) - 1:]
    init = ref.encode([reference_fc_left_light(64, 64)], 64, 64).expand(2, -1, -1, -1)
    fg = ref.encode([person], 64, 64).expand(2, -1, -1, -1)
    cond, uncond = embeddings(2)
    expected = ref.sample(init + noise((4, 8, 8), [0, 1]) * sigmas[0], sigmas, fg, cond, uncond, 2.0)

    diff = (ours - expected).abs().max().item()
    report(f"end to end img2img fc (Left light, batch 2): max |diff| vs reference = {diff:.3g}")
    assert diff <= 1e-4, f"img2img fc result differs from the reference by {diff:.3g}"
    assert p.extra_generation_params["IC-Light light"] == "Left"


def test_txt2img_fbc_with_uploaded_background_matches_reference(a1111, report):
    person = subject(80, seed=2, alpha=True)
    background = subject(96, seed=3)
    p = txt2img([True, "iclight_sd15_fbc.safetensors", "Left", person, None, "Upload", background, False, False],
                width=64, height=64, steps=3, cfg_scale=2.0)
    ours = run(p).latents

    ref = ReferencePipeline(a1111.sd_model, a1111.model_dir / "iclight_sd15_fbc.safetensors")
    sigmas = ref.sigmas(3)
    grey_person = composite_on_grey(person[..., :3], person[..., 3] / 255.0)
    concat = torch.cat([ref.encode([grey_person], 64, 64), ref.encode([background], 64, 64)], dim=1)
    cond, uncond = embeddings(1)
    expected = ref.sample(noise((4, 8, 8), [0]) * sigmas[0], sigmas, concat, cond, uncond, 2.0)

    diff = (ours - expected).abs().max().item()
    report(f"end to end txt2img fbc (RGBA foreground, uploaded background): max |diff| vs reference = {diff:.3g}")
    assert diff <= 1e-4, f"txt2img fbc result differs from the reference by {diff:.3g}"


def test_txt2img_fc_with_hires_pass_reencodes_foreground_and_matches_reference(a1111, report):
    person = subject(100, seed=4)
    p = txt2img([{"enabled": True, "foreground": person}], width=128, height=128, steps=3, cfg_scale=2.0,
                enable_hr=True, hr_scale=1.5, denoising_strength=0.5, hr_second_pass_steps=2)
    ours = run(p).latents
    assert ours.shape == (1, 4, 24, 24)

    ref = ReferencePipeline(a1111.sd_model, a1111.model_dir / "iclight_sd15_fc.safetensors")
    cond, uncond = embeddings(1)
    sigmas = ref.sigmas(3)
    first = ref.sample(noise((4, 16, 16), [0]) * sigmas[0], sigmas, ref.encode([person], 128, 128), cond, uncond, 2.0)
    upscaled = torch.nn.functional.interpolate(first, size=(24, 24), mode="bilinear", antialias=False)
    total = int(2 / 0.5)
    hires_sigmas = ref.sigmas(total)[total - (2 - 1) - 1:]
    expected = ref.sample(upscaled + noise((4, 24, 24), [0]) * hires_sigmas[0], hires_sigmas,
                          ref.encode([person], 192, 192), cond, uncond, 2.0)

    diff = (ours - expected).abs().max().item()
    report(f"end to end txt2img fc with hires. fix 128->192: max |diff| vs reference = {diff:.3g}")
    assert diff <= 1e-4, f"hires result differs from the reference by {diff:.3g}"


def test_each_subject_of_an_img2img_batch_is_relit_with_its_own_foreground(a1111):
    subjects = [subject(64, seed=5), subject(64, seed=6)]
    args = [{"enabled": True, "light": "Right"}]
    together = run(img2img(args, [pil(s) for s in subjects], batch_size=2, steps=3, denoising_strength=0.9)).latents
    for i, s in enumerate(subjects):
        alone = run(img2img(args, [pil(s)], batch_size=1, steps=3, denoising_strength=0.9, seed=i)).latents
        diff = (together[i] - alone[0]).abs().max().item()
        assert diff < 1e-4, f"subject {i} in the batch was not relit as when alone (diff {diff:.3g})"


def test_batch_count_relights_every_batch(a1111):
    p = img2img([{"enabled": True}], [pil(subject(64))], batch_size=1, n_iter=2, steps=3, denoising_strength=0.9)
    result = run(p)
    assert result.latents.shape[0] == 2 and not torch.equal(result.latents[0], result.latents[1])
    single = run(img2img([{"enabled": True}], [pil(subject(64))], batch_size=1, n_iter=1, steps=3,
                         denoising_strength=0.9, seed=1)).latents
    assert (result.latents[1] - single[0]).abs().max() < 1e-4, "second batch was not relit like a first one"


def test_generation_without_iclight_after_one_with_it_is_plain(a1111):
    plain_args = [{"enabled": False}]
    before = run(txt2img(plain_args, steps=2)).latents
    run(txt2img([{"enabled": True, "foreground": subject(64)}], steps=2))
    after = run(txt2img(plain_args, steps=2)).latents
    assert torch.equal(before, after), "a plain generation changed after an IC-Light one"


def test_changing_checkpoint_between_generations_relights_with_the_new_one(a1111, report):
    from modules import shared

    person = subject(64, seed=8)
    args = [{"enabled": True, "foreground": person}]
    run(txt2img(args, steps=2))
    info = a1111.add_checkpoint("another-sd15", seed=21)
    shared.opts.sd_model_checkpoint = info.title  # selected in the UI: A1111 loads it as the generation starts
    ours = run(txt2img(args, steps=2)).latents
    new_model = shared.sd_model
    assert new_model.sd_checkpoint_info == info

    ref = ReferencePipeline(new_model, a1111.model_dir / "iclight_sd15_fc.safetensors")
    sigmas = ref.sigmas(2)
    cond, uncond = embeddings(1)
    expected = ref.sample(noise((4, 8, 8), [0]) * sigmas[0], sigmas, ref.encode([person], 64, 64), cond, uncond, 2.0)
    assert (ours - expected).abs().max() <= 1e-4, "IC-Light did not run on the newly loaded checkpoint"


def test_extra_outputs_add_the_inputs_to_the_results(a1111):
    p = img2img([{"enabled": True, "extra_outputs": True, "light": "Top"}], [pil(subject(64))], steps=2,
                denoising_strength=0.9)
    result = run(p)
    assert len(result.images) == 3, "expected the relit image, the foreground and the light map"
    light_map = np.array(result.images[2])
    assert light_map[0].mean() > light_map[-1].mean(), "Top light map is not bright at the top"
    assert len(result.infotexts) == len(result.images)


def test_img2img_batch_tab_relights_each_file_on_the_same_p(a1111):
    """modules/img2img.py `process_batch` (v1.10.1) sets `p.init_images` per file and calls
    `process_images` on one `p` for all files."""
    from modules import processing

    files = [subject(64, seed=10), subject(64, seed=11)]
    p = img2img([{"enabled": True, "light": "Left"}], [None], steps=2, denoising_strength=0.9)
    with_batch_tab = []
    for image in [None] + files:
        p.init_images = [pil(image)] if image is not None else [None]
        if image is None:
            with pytest.raises(IcLightError, match="needs a subject"):
                processing.process_images(p)
            continue
        with_batch_tab.append(processing.process_images(p).latents)
    for image, latents in zip(files, with_batch_tab):
        fresh = run(img2img([{"enabled": True, "light": "Left"}], [pil(image)], steps=2, denoising_strength=0.9)).latents
        assert torch.equal(latents, fresh), "a file of the batch tab was not relit like in its own generation"


def test_light_color_diagonal_and_falloff_shape_the_initial_image(a1111):
    p = img2img([{"enabled": True, "light": "Top Left", "light_color": "#ff2000", "shadow_color": "#000040",
                  "falloff": 2.0, "extra_outputs": True}], [pil(subject(64))], steps=2, denoising_strength=0.9)
    light_map = np.array(run(p).images[2])
    assert tuple(light_map[0, 0]) == (255, 32, 0) and tuple(light_map[-1, -1]) == (0, 0, 64)
    assert p.extra_generation_params["IC-Light falloff"] == "2.0"
