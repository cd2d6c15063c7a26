"""Beside Agent Scheduler (stand-in `agent_scheduler_tasks`): an IC-Light task queued from the UI (its arguments
pickled) or from Agent Scheduler's API (the request stored as JSON) and run later makes the same image as the
generation run at once (its pixels and its latent): an uploaded foreground, placed lights, an fbc background."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from agent_scheduler_tasks import (
    deserialize_script_args, fill_script_slots, queue_api_task, serialize_script_args, stored_request,
)
from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.generation.params import PARAMS, defaults

LIGHTS = "0.3, 0.4, 0.5, #ffd0a0, 1.2\n0.8, 0.2, 0.3, #a0c0ff, 0.8"


def png_data_url(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# Each case: a generation, and IC-Light's values as the panel holds them (uploads as numpy arrays).
CASES = {
    "img2img fc, uploaded foreground, placed lights": (
        lambda args: img2img(args, [pil(subject(64, seed=1))], steps=2, seed=3, denoising_strength=0.9),
        {"light": "Placed", "lights": LIGHTS, "foreground": subject(64, seed=2, alpha=True)}, "fc"),
    "txt2img fbc, uploaded foreground and background": (
        lambda args: txt2img(args, steps=2, seed=3),
        {"foreground": subject(64, seed=2, alpha=True), "background_source": "Upload",
         "background": subject(64, seed=5)}, "fbc"),
}


def image_of(make, script_args):
    """The generation's first result and its latent (the tiny test model's pixels hide small differences)."""
    from modules import processing

    processed = processing.run_generation(make(script_args))
    return np.concatenate([np.array(processed.images[0], np.float32).ravel(), processed.latents[0].numpy().ravel()])


def panel_args(a1111, values, variant):
    """The script's arguments from the UI: every component's value, in the schema's order."""
    chosen = {**defaults(), "enabled": True, "model": a1111.model_file(variant).label, **values}
    return [chosen[p.key] for p in PARAMS]


@pytest.mark.parametrize("case", CASES)
def test_task_queued_from_the_ui_makes_the_image_of_the_direct_run(a1111, case):
    make, values, variant = CASES[case]
    args = panel_args(a1111, values, variant)
    direct = image_of(make, args)
    queued = serialize_script_args(list(args))
    replayed = image_of(make, deserialize_script_args(queued))
    assert np.array_equal(direct, replayed), "the queued task made another image than the direct run"


@pytest.mark.parametrize("case", CASES)
def test_task_queued_through_its_api_makes_the_image_of_the_direct_api_call(a1111, case):
    from generation_harness import script_runner

    make, values, variant = CASES[case]
    named = {"model": a1111.model_file(variant).name,
             **{k: png_data_url(v) if isinstance(v, np.ndarray) else v for k, v in values.items()}}
    request = {"prompt": "a subject", "alwayson_scripts": {"ic-light": {"args": [named]}}}
    script = script_runner().alwayson_scripts[0]
    ui_defaults = [defaults()[p.key] for p in PARAMS]

    direct = image_of(make, fill_script_slots(json.loads(json.dumps(request)), script, ui_defaults))
    stored = queue_api_task(request, [script])
    replayed = image_of(make, fill_script_slots(stored_request(stored), script, ui_defaults))
    assert np.array_equal(direct, replayed), "the task queued through the API made another image than the direct call"
    assert not np.array_equal(direct, image_of(make, ui_defaults)), "IC-Light did not run in the direct call"
