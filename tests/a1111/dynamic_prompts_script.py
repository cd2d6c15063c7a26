"""Stand-in for Dynamic Prompts (github adieyal/sd-dynamic-prompts, commit e8326b5e): its `process` hook
(sd_dynamic_prompts/dynamic_prompting.py 346-560 at that commit) gives each image of the generation its own
prompt. It keeps the template as `p.prompt`, sets `p.all_prompts` and `p.all_negative_prompts` to one prompt
per image, `p.all_seeds` to the seed plus the image's number (`get_seeds`, sd_dynamic_prompts/helpers.py
14-44, without a fixed seed), and `p.n_iter` to the batches those prompts need (`ceil(count / batch_size)`,
line 496), which in combinatorial mode may be another number of images than asked for.

Departures: the template's variants `{a|b|c}` are expanded in order (the combinatorial generator), and as
many prompts are made as `count` says (its `max_generations`); the rest of its options are left out.
"""
from __future__ import annotations

import itertools
import math
import re

from modules import scripts

VARIANTS = re.compile(r"\{([^{}]*)\}")


def expand(template: str) -> list[str]:
    """Every prompt the template's `{a|b}` variants make, in order."""
    parts = VARIANTS.split(template)
    choices = [part.split("|") if k % 2 else [part] for k, part in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


class DynamicPromptsScript(scripts.Script):
    filename = "extensions/sd-dynamic-prompts/scripts/dynamic_prompting.py"
    alwayson = True

    def title(self):
        return "Dynamic Prompts"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def process(self, p, is_enabled=True, count=None, *args):
        if not is_enabled:
            return
        prompts = list(itertools.islice(itertools.cycle(expand(p.prompt)), count or p.n_iter * p.batch_size))
        seed = int(p.seed)
        p.all_prompts = prompts
        p.all_negative_prompts = [getattr(p, "negative_prompt", "")] * len(prompts)
        p.all_seeds = [seed + i for i in range(len(prompts))]
        p.n_iter = math.ceil(len(prompts) / p.batch_size)
