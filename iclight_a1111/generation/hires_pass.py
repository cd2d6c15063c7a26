"""IC-Light and hires. fix: whether the hires pass runs with IC-Light, and switching it off before it.

The first pass always runs with IC-Light. The hires pass runs with it too when it stays on the same
checkpoint ("Automatic"), or when asked ("On") on another SD 1.x checkpoint, onto which IC-Light is
then merged. Before another checkpoint, or a plain hires pass, IC-Light goes off as soon as the first
pass has sampled: before A1111 decodes the first pass and loads the hires checkpoint, so the checkpoint
A1111 may unload has its own weights back and nothing of IC-Light is kept for it (A1111 itself calls
`apply_unet("None")` only when it reads a checkpoint from disk, not when it switches to one already
loaded).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from ..unet.checkpoint_family import SD1
from ..errors import IcLightError


def uses_iclight(choice: str, hires_checkpoint: tuple[str, str | None] | None) -> bool:
    """Whether the hires pass runs with IC-Light. `hires_checkpoint`: (title, family) of the hires
    checkpoint when it is another than the one in use, else None."""
    on = choice == "On" or (choice == "Automatic" and hires_checkpoint is None)
    if on and hires_checkpoint is not None and hires_checkpoint[1] not in (SD1, None):
        title, family = hires_checkpoint
        raise IcLightError(
            f"IC-Light 'Hires pass: On' merges IC-Light onto the hires checkpoint, but {title} is an {family} "
            "checkpoint and IC-Light exists for SD 1.x only. Set IC-Light's 'Hires pass' to Automatic or Off (the "
            "hires pass then refines the relit image plainly), or choose an SD 1.x hires checkpoint."
        )
    return on


def switch_off_after_first_pass(sampler: Any, switch_off: Callable[[], None]) -> None:
    """Call `switch_off()` as soon as `sampler` (the first pass's) has sampled, whatever happens."""
    original = sampler.sample

    @functools.wraps(original)
    def sample(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            switch_off()

    sampler.sample = sample
