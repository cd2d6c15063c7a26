"""Which images are results: A1111's inpaint mask images and ControlNet's detect maps stay as they are,
and IC-Light's steps and extras come from the real results only."""
import numpy as np
import pytest
from PIL import Image

from controlnet_hook import DetectMapScript
from generation_harness import img2img, pil, subject
from iclight_a1111.images.detail import restore_detail
from iclight_a1111.generation.job import JOB_ATTR


@pytest.mark.parametrize("controlnet_first", [True, False])
def test_detail_raw_relights_and_normal_map_come_only_from_real_results(a1111, monkeypatch, tmp_path, controlnet_first):
    from modules import images, processing, shared
    from modules.scripts import ScriptRunner

    for option in ("return_mask", "return_mask_composite", "return_grid"):
        monkeypatch.setattr(shared.opts, option, True)
    images.saved.clear()
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 40, 64))
    picture = subject(64, seed=3)
    p = img2img([{"enabled": True, "normal_map": True, "restore_detail": True, "detail_size": 3, "keep_raw": True}],
                [pil(picture)], mask=mask, steps=2, denoising_strength=0.9, outpath_samples=str(tmp_path))
    detect_maps = [Image.new("RGB", (64, 64), (0, 0, 255)) for _ in range(2)]
    iclight = p.scripts.alwayson_scripts[0]
    controlnet = DetectMapScript(detect_maps)
    p.scripts = ScriptRunner([controlnet, iclight] if controlnet_first else [iclight, controlnet])
    processed = processing.process_images(p)

    records = getattr(p, JOB_ATTR).results
    assert [r.index for r in records] == [0, 1, 2, 3], "a mask image or detect map was taken for a result"
    results = [i for i in processed.images if any(i is r.final for r in records)]
    assert len(results) == 4
    for record in records:
        assert np.array_equal(np.array(record.final), restore_detail(np.array(record.raw), picture, 3)), \
            f"result {record.index} is not its own restored relight"
    assert sum(i is m for i in processed.images for m in detect_maps) == 2, "the detect maps were dropped or copied"
    grid_and_results_and_masks = 1 + 4 * 3
    added = processed.images[grid_and_results_and_masks:]
    ours = [i for i in added if not any(i is m for m in detect_maps)]
    assert len(ours) == 4 + 1, "expected the 4 raw relights and one normal map"
    assert all(np.array_equal(np.array(o), np.array(r.raw)) for o, r in zip(ours, records)), "raw extras are not the raw results"

    extras = [(path, info) for path, info in images.saved if "-iclight-" in path]
    assert len(extras) == 5
    seeds = [path.rsplit("/", 1)[-1].split("-")[1] for path, _ in extras]
    assert seeds == [str(s) for s in p.all_seeds] + [str(p.all_seeds[0])], f"extras saved with the wrong seeds: {seeds}"
    assert all(info.startswith(f"Seed: {seed}, ") for (_, info), seed in zip(extras, seeds)), "extras carry another image's infotext"
    texts = processed.infotexts
    for position, image in enumerate(processed.images):
        if any(image is r.final for r in records):
            assert texts[position].startswith("Seed: "), f"result at {position} lost its infotext"
        elif position >= 1 and any(image is m for m in detect_maps) and position < len(texts):
            assert texts[position] == "", "a detect map was given a result's infotext"
