"""Merged copies released before A1111 loads other weights or unloads the checkpoint, not after.

A1111 tells extensions of a checkpoint switch only once the new weights are loaded (`model_loaded`
callbacks, modules/sd_models.py ~868 and ~985). IC-Light is off by then (it goes off after each
generation), so the `sd_unet.apply_unet("None")` before the load (~963) finds nothing to switch off,
and a merged copy kept on the GPU would sit there beside the weights being loaded: on an 8 GB card an
SD 1.5 -> SDXL switch runs out of memory. Every switch goes through `sd_models.reload_model_weights`
(the checkpoint dropdown and the options API through the setting's onchange, `override_settings` and
the X/Y/Z checkpoint axis through `process_images`, the X/Y/Z grid putting the checkpoint back, the
refiner, a hires checkpoint), looked up on the module at each call: it is wrapped so that the copies
are released first whenever it is about to load weights other than the loaded ones.

Unloading the checkpoint to RAM (`POST /sdapi/v1/unload-checkpoint`, Settings' "Unload SD checkpoint to
RAM") goes through `sd_models.unload_model_weights` (~1005; the API looks it up at each call, the Settings
button when the UI is built, after the scripts are loaded): whoever frees VRAM frees IC-Light's copies too.
On Forge the same call frees the IC-Light offsets kept in RAM.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from modules import sd_models, shared

from .merged_weights import MERGED_WEIGHTS, release_merged_weights

WRAPPED = "iclight_releases_merged_weights_first"


def install() -> None:
    """Wrap `sd_models.reload_model_weights` and `sd_models.unload_model_weights` (once each)."""
    wrap("reload_model_weights", lambda *args, **kwargs: len(MERGED_WEIGHTS) > 0 and loads_other_weights(*args, **kwargs),
         release_merged_weights)
    wrap("unload_model_weights", lambda *args, **kwargs: len(MERGED_WEIGHTS) > 0, release_merged_weights)


def install_on_forge(release: Callable[[], None]) -> None:
    """Forge's `unload_model_weights` (modules/sd_models.py 451-453: `unload_all_models`), called by the API's
    unload-checkpoint (looked up at each call) and Settings' "Unload all models" (bound when the UI is built,
    after the scripts load): `release` (what IC-Light keeps between generations) goes first."""
    wrap("unload_model_weights", lambda *args, **kwargs: True, release)


def wrap(name: str, releases: Callable[..., bool], release: Callable[[], None]) -> None:
    """Make `sd_models.<name>` call `release()` first whenever `releases(*its arguments)`."""
    original = getattr(sd_models, name)
    if getattr(original, WRAPPED, False):
        return

    @functools.wraps(original)
    def released_first(*args: Any, **kwargs: Any) -> Any:
        if releases(*args, **kwargs):
            release()
        return original(*args, **kwargs)

    setattr(released_first, WRAPPED, True)
    setattr(sd_models, name, released_first)


def loads_other_weights(sd_model: Any = None, info: Any = None, forced_reload: bool = False, *_: Any, **__: Any) -> bool:
    """Whether `reload_model_weights(sd_model, info, forced_reload)` will put other weights in place of
    the loaded ones: as its own first check (~944-955), the loaded model's file against the asked
    checkpoint (`info`, else the selected one); an unknown selection loads a fallback."""
    model = sd_model or sd_models.model_data.sd_model
    if model is None or forced_reload:
        return True
    target = info or sd_models.checkpoint_aliases.get(shared.opts.sd_model_checkpoint)
    return target is None or getattr(model, "sd_model_checkpoint", None) != target.filename
