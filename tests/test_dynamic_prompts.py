"""Beside Dynamic Prompts (stand-in `dynamic_prompts_script`): each image of the generation has its own prompt,
and IC-Light's results, extras and infotexts stay with their image, also when Dynamic Prompts changes the batch
count after IC-Light's `process`."""
import numpy as np
import pytest

from dynamic_prompts_script import DynamicPromptsScript, expand
from generation_harness import subject, txt2img
from iclight_a1111.generation.job import JOB_ATTR
from iclight_a1111.generation.params import PARAMS

TEMPLATE = "a {red|green|blue|white} subject"
SEED = 20


def with_dynamic_prompts(p, count, first):
    from modules.scripts import ScriptRunner

    iclight = p.scripts.alwayson_scripts[0]
    dynamic = DynamicPromptsScript()
    dynamic.args_from, dynamic.args_to = len(PARAMS), len(PARAMS) + 2
    p.scripts = ScriptRunner([dynamic, iclight] if first else [iclight, dynamic])
    p.script_args = tuple(p.script_args) + (None,) * (len(PARAMS) - len(p.script_args)) + (True, count)
    return p


@pytest.mark.parametrize("dynamic_prompts_first", [True, False])
def test_each_image_keeps_its_own_prompt_in_results_extras_and_saved_files(a1111, dynamic_prompts_first):
    from modules import images, processing

    images.saved.clear()
    values = {"enabled": True, "foreground": subject(), "keep_raw": True, "extra_outputs": True}
    p = txt2img([values], batch_size=2, n_iter=1, steps=2, seed=SEED, prompt=TEMPLATE)
    processed = processing.run_generation(with_dynamic_prompts(p, 6, dynamic_prompts_first))

    prompts = (expand(TEMPLATE) * 2)[:6]
    assert p.n_iter == 3, "the stand-in did not change the batch count"
    records = getattr(p, JOB_ATTR).results
    assert [r.index for r in records] == list(range(6))
    texts = processed.infotexts
    assert len(processed.images) == 6 + 6 + 1 and len(texts) == len(processed.images)
    for k, prompt in enumerate(prompts):
        assert texts[k].startswith(f"Seed: {SEED + k}, Prompt: {prompt},"), f"result {k} lost its prompt: {texts[k]}"
        assert processed.images[k] is records[k].final
        raw = processed.images[6 + k]
        assert np.array_equal(np.array(raw), np.array(records[k].raw)), f"raw relight {k} is another image's"
        assert texts[6 + k] == texts[k], f"raw relight {k} carries another image's infotext"
    assert texts[12] == texts[0]

    saved = {path.rsplit("/", 1)[-1]: info for path, info in images.saved}
    for k in range(6):
        result = next(info for name, info in saved.items() if name.endswith(f"-{SEED + k}.png"))
        raw = next(info for name, info in saved.items() if name.endswith(f"-{SEED + k}-iclight-raw.png"))
        assert raw == result and f"Prompt: {prompts[k]}," in raw, f"saved raw relight {k} has another image's prompt"
