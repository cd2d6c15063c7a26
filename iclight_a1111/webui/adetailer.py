"""ADetailer (github Bing-su/adetailer) running IC-Light again inside its face pass.

After sampling, ADetailer details each detected face with an img2img of the picture (`postprocess_image` in
its scripts/!adetailer.py), running only the always-on scripts whose file name is listed in its setting
`ad_script_names`, or all of them when `ad_only_selected_scripts` is off. IC-Light there would relight a face
crop ("Inpaint only masked", ADetailer's default) or relight the picture again from its light map inside the
face mask, each time with the whole subject as the condition: neither gives the relit picture's face. A
generation where that would happen is refused before anything is sampled; a face pass that runs IC-Light
anyway is refused by the same message.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from modules import shared

ADETAILER_TITLE = "ADetailer"
SCRIPT_NAME = "iclight"  # the file name of scripts/iclight.py without extension: what ADetailer's list holds


def face_pass_refusal(p: Any) -> str | None:
    """Why IC-Light must not run in this generation beside ADetailer; None when nothing stands against it."""
    if getattr(p, "_ad_inner", False):  # the face pass itself: ADetailer marks its img2img so
        return refusal()
    runner = getattr(p, "scripts", None)
    adetailer = next((s for s in getattr(runner, "alwayson_scripts", None) or () if s.title() == ADETAILER_TITLE), None)
    if adetailer is None or not adetailer_enabled(p.script_args[adetailer.args_from:adetailer.args_to]):
        return None
    return refusal() if face_pass_runs_iclight() else None


def adetailer_enabled(args: Sequence[Any]) -> bool:
    """As ADetailer decides it (`is_ad_enabled`): its first argument, true unless a bool says otherwise, and a
    tab with a detection model that is not switched off."""
    tabs = [a for a in args if isinstance(a, Mapping)]
    switched_on = args[0] if args and isinstance(args[0], bool) else True
    return switched_on and any(t.get("ad_model", "None") != "None" and t.get("ad_tab_enable", True) is not False
                               for t in tabs)


def face_pass_runs_iclight() -> bool:
    """Whether ADetailer's face pass runs IC-Light's script (its `script_filter`): listed by file name, or
    every script when only the selected ones are not asked for."""
    options = shared.opts.data
    if not options.get("ad_only_selected_scripts", True):
        return True
    return SCRIPT_NAME in {n.strip() for n in str(options.get("ad_script_names", "")).split(",")}


def refusal() -> str:
    reason = ("IC-Light relights with the whole subject as condition: it can neither relight the face crop "
              "ADetailer samples nor relight the face again inside the relit picture.")
    if not shared.opts.data.get("ad_only_selected_scripts", True):
        return (f"ADetailer would run IC-Light again in its face pass: Settings > ADetailer > 'Apply only selected "
                f"scripts to ADetailer' (ad_only_selected_scripts) is off, so it runs every script there. {reason} "
                f"Turn ad_only_selected_scripts on, without '{SCRIPT_NAME}' in 'Script names to apply to ADetailer' "
                "(ad_script_names): ADetailer then details the relit faces without IC-Light.")
    return (f"ADetailer would run IC-Light again in its face pass: '{SCRIPT_NAME}' is in Settings > ADetailer > "
            f"'Script names to apply to ADetailer' (ad_script_names). {reason} Remove '{SCRIPT_NAME}' from "
            "ad_script_names: ADetailer then details the relit faces without IC-Light.")
