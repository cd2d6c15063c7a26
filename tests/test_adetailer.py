"""Beside ADetailer (stand-in `adetailer_script`): its face pass, a whole img2img run inside the IC-Light
generation, details the relit image as ADetailer alone would; the repeated `postprocess` / `process` it calls
on copies of `p` neither save IC-Light's extras again nor remove the background again; the nested generation
costs no merge; IC-Light listed among ADetailer's scripts is refused by the setting's name."""
import numpy as np
import pytest

from adetailer_script import SCRIPT_DEFAULT, AfterDetailerScript, box_mask, centre_box
from generation_harness import subject, txt2img
from iclight_a1111.errors import IcLightError
from iclight_a1111.generation.params import PARAMS
from tiny_models import parameter_fingerprint

FACE_TAB = {"ad_model": "face_yolov8n.pt", "ad_mask_blur": 1, "ad_denoising_strength": 0.5}
AD_ARGS = (True, False, FACE_TAB)
SEED = 11


def with_adetailer(p, ad_args=AD_ARGS):
    """`p` with ADetailer's script beside IC-Light's, each with its slots of `p.script_args`."""
    from modules.scripts import ScriptRunner

    iclight = p.scripts.alwayson_scripts[0]
    adetailer = AfterDetailerScript()
    iclight_args = tuple(p.script_args) + (None,) * (len(PARAMS) - len(p.script_args))
    adetailer.args_from, adetailer.args_to = len(PARAMS), len(PARAMS) + len(ad_args)
    p.scripts = ScriptRunner([adetailer, iclight])
    p.script_args = iclight_args + tuple(ad_args)
    return p


def generation(n_iter=1, batch_size=1, **values):
    return txt2img([{"enabled": True, "foreground": subject(), **values}], batch_size=batch_size, n_iter=n_iter,
                   steps=2, seed=SEED)


def adetailer_alone(image, seed):
    """ADetailer's `postprocess_image` on `image` in a generation without IC-Light, with that image's seed."""
    from modules import scripts

    p = with_adetailer(txt2img([{"enabled": False}], steps=2, seed=seed))
    p.all_seeds, p.iteration, p.batch_index = [seed], 0, 0
    pp = scripts.PostprocessImageArgs(image)
    p.scripts.alwayson_scripts[0].postprocess_image(p, pp, *AD_ARGS)
    return pp.image


@pytest.fixture
def posterior_mode(a1111, monkeypatch):
    """img2img encodes its picture with a sample of the VAE posterior drawn from torch's global generator, so
    two face passes on one image differ; here they take the posterior's mode, the same for both."""
    model = a1111.sd_model
    monkeypatch.setattr(model, "get_first_stage_encoding", lambda posterior: model.scale_factor * posterior.mode())


@pytest.fixture
def merges(monkeypatch):
    """The number of times IC-Light offsets were merged into checkpoint weights."""
    from iclight_a1111.unet import concat_unet

    calls = []
    merge = concat_unet.merge_offsets

    def counted(*args, **kwargs):
        calls.append(1)
        return merge(*args, **kwargs)

    monkeypatch.setattr(concat_unet, "merge_offsets", counted)
    return calls


def test_face_pass_details_the_relit_image_as_adetailer_alone_and_leaves_the_rest_untouched(a1111, posterior_mode):
    from modules import processing, scripts

    scripts.reported_errors.clear()
    relit = processing.run_generation(generation(n_iter=2)).images
    detailed = processing.run_generation(with_adetailer(generation(n_iter=2))).images
    assert not scripts.reported_errors, scripts.reported_errors[-1]

    for k, (before, after) in enumerate(zip(relit, detailed)):
        expected = adetailer_alone(before, SEED + k)
        assert np.array_equal(np.array(after), np.array(expected)), \
            f"image {k}: the face pass did not run as ADetailer alone runs it on the relit image"
        face = np.array(box_mask(before.size, centre_box(before)[0], FACE_TAB.get("ad_dilate_erode", 4))) > 0
        reach = np.zeros_like(face)
        ys, xs = np.nonzero(face)
        blur = 2 * int(2.5 * FACE_TAB["ad_mask_blur"] + 0.5)  # the blurred mask's reach beyond the box
        reach[max(ys.min() - blur, 0):ys.max() + blur + 1, max(xs.min() - blur, 0):xs.max() + blur + 1] = True
        a, b = np.array(before), np.array(after)
        assert np.array_equal(a[~reach], b[~reach]), f"image {k}: the relit image changed outside the face box"
        assert not np.array_equal(a[face], b[face]), f"image {k}: the face pass changed nothing"


def test_batch_count_three_with_adetailer_merges_nothing_on_a_warm_cache(a1111, merges):
    from modules import processing, sd_unet

    from iclight_a1111.webui import merged_weights

    processing.run_generation(generation())
    assert len(merges) == 1
    before = parameter_fingerprint(a1111.unet)
    processed = processing.run_generation(with_adetailer(generation(n_iter=3)))
    assert len(processed.images) == 3
    assert len(merges) == 1, f"the generation with ADetailer merged the IC-Light weights {len(merges) - 1} more times"
    assert merged_weights.MERGED_WEIGHTS.held_for(a1111.unet), "the merged copy was released during the generation"
    assert sd_unet.current_unet is None and parameter_fingerprint(a1111.unet) == before


@pytest.mark.parametrize("n_iter, batch_size", [(3, 1), (2, 2)])
def test_extras_are_saved_once_each_with_their_own_infotext_beside_adetailer(a1111, n_iter, batch_size):
    from modules import images, processing

    images.saved.clear()
    p = with_adetailer(generation(n_iter=n_iter, batch_size=batch_size, keep_raw=True, extra_outputs=True))
    processed = processing.run_generation(p)

    count = n_iter * batch_size
    raw = [(path, info) for path, info in images.saved if path.endswith("-iclight-raw.png")]
    inputs = [(path, info) for path, info in images.saved if path.endswith("-iclight-input.png")]
    assert len(raw) == count, f"{len(raw)} raw relights saved for {count} images"
    assert len(inputs) == 1, f"the subject was saved {len(inputs)} times"
    results = [info for path, info in images.saved if "-iclight-" not in path]
    assert [info for _, info in raw] == results, "a raw relight was saved without its own result's infotext"
    assert inputs[0][1] == results[0]
    assert len(processed.images) == count + count + 1


def test_background_is_removed_once_per_generation_beside_adetailer(a1111, monkeypatch):
    from modules import processing

    from iclight_a1111.webui import host as webui_host

    calls = []

    def predict_alphas(self, images):
        calls.append(len(images))
        return [np.full(i.shape[:2], 1.0, np.float32) for i in images]

    monkeypatch.setattr(webui_host.A1111Host, "predict_alphas", predict_alphas)
    processing.run_generation(with_adetailer(generation(n_iter=3, remove_background=True)))
    assert calls == [1], f"the background was removed {len(calls)} times in one generation"


@pytest.mark.parametrize("settings, named", [
    ({"ad_script_names": SCRIPT_DEFAULT + ",iclight"}, "ad_script_names"),
    ({"ad_only_selected_scripts": False}, "ad_only_selected_scripts"),
])
def test_iclight_run_again_in_adetailer_face_pass_is_refused_before_sampling(a1111, merges, monkeypatch, settings,
                                                                            named):
    from modules import processing, sd_unet, shared

    processing.run_generation(generation())
    for key, value in settings.items():
        monkeypatch.setitem(shared.opts.data, key, value)
    calls = []
    hook = a1111.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    before = parameter_fingerprint(a1111.unet)
    try:
        with pytest.raises(IcLightError, match=named) as refused:
            processing.run_generation(with_adetailer(generation(n_iter=3)))
    finally:
        hook.remove()
    assert "ADetailer" in str(refused.value)
    assert not calls, "the UNet ran before the refusal"
    assert len(merges) == 1 and sd_unet.current_unet is None and parameter_fingerprint(a1111.unet) == before


def test_iclight_listed_for_adetailer_runs_when_adetailer_is_off(a1111, monkeypatch):
    from modules import processing, shared

    monkeypatch.setitem(shared.opts.data, "ad_script_names", SCRIPT_DEFAULT + ",iclight")
    processed = processing.run_generation(with_adetailer(generation(), ad_args=(False, False, FACE_TAB)))
    assert len(processed.images) == 1


@pytest.mark.parametrize("only_masked", [True, False])
def test_face_pass_running_iclight_inside_is_refused_naming_the_setting(a1111, merges, monkeypatch, only_masked):
    """The refusal also where ADetailer's face pass itself runs IC-Light (a face pass started without the
    generation's own check): IC-Light steps off without releasing its merged copy."""
    from modules import processing, sd_unet, shared

    monkeypatch.setitem(shared.opts.data, "ad_script_names", SCRIPT_DEFAULT + ",iclight")
    p = with_adetailer(generation())
    relit = processing.run_generation(generation()).images[0]
    p.all_seeds, p.iteration, p.batch_index = [SEED], 0, 0
    face_pass = p.scripts.alwayson_scripts[0].i2i_processing(p, {**FACE_TAB, "ad_inpaint_only_masked": only_masked,
                                                                  "ad_mask_blur": 1}, relit)
    face_pass.image_mask = box_mask(relit.size, centre_box(relit)[0], 4)
    a1111.activate("fc")
    with pytest.raises(IcLightError, match="ad_script_names"):
        processing.run_generation(face_pass)
    assert sd_unet.current_unet is None
    processing.run_generation(generation())
    assert len(merges) == 1, "the refused face pass released IC-Light's merged copy"
