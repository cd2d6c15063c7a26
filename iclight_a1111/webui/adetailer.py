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

from pathlib import Path
from typing import Any, Mapping, Sequence

from modules import shared

ADETAILER_TITLE = "ADetailer"
ICLIGHT_TITLE = "IC-Light"
ICLIGHT_SCRIPT_NAME = "iclight"  # scripts/iclight.py, the name ADetailer's list matches


def face_pass_refusal(p: Any) -> str | None:
    """Why IC-Light must not run in this generation beside ADetailer; None when nothing stands against it."""
    own = own_script_name(p)
    if getattr(p, "_ad_inner", False):  # the face pass itself: ADetailer marks its img2img so
        return refusal(own)
    adetailer = next((s for s in alwayson_scripts(p) if s.title() == ADETAILER_TITLE), None)
    if adetailer is None or not adetailer_enabled(p.script_args[adetailer.args_from:adetailer.args_to]):
        return None
    return refusal(own) if face_pass_runs(own) else None


def alwayson_scripts(p: Any) -> list[Any]:
    return list(getattr(getattr(p, "scripts", None), "alwayson_scripts", None) or ())


def own_script_name(p: Any) -> str:
    """IC-Light's script file name without extension, as ADetailer compares it with its list."""
    script = next((s for s in alwayson_scripts(p) if s.title() == ICLIGHT_TITLE), None)
    filename = getattr(script, "filename", None)
    return Path(filename).stem if filename else ICLIGHT_SCRIPT_NAME


def adetailer_enabled(args: Sequence[Any]) -> bool:
    """As ADetailer decides it (`is_ad_enabled`): its first argument, true unless a bool says otherwise, and a
    tab with a detection model that is not switched off."""
    tabs = [a for a in args if isinstance(a, Mapping)]
    switched_on = args[0] if args and isinstance(args[0], bool) else True
    return switched_on and any(t.get("ad_model", "None") != "None" and t.get("ad_tab_enable", True) is not False
                               for t in tabs)


def face_pass_runs(name: str) -> bool:
    """Whether ADetailer's face pass runs the script of this file name (its `script_filter`)."""
    options = shared.opts.data
    if not options.get("ad_only_selected_scripts", True):
        return True
    return name in {n.strip() for n in str(options.get("ad_script_names", "")).split(",")}


def refusal(name: str) -> str:
    reason = ("IC-Light relights whole pictures with the whole subject as condition; it cannot relight "
              "ADetailer's face crops, and relighting the picture again would undo the relit face.")
    if not shared.opts.data.get("ad_only_selected_scripts", True):
        return (f"ADetailer would run IC-Light again in its face pass: 'Apply only selected scripts to ADetailer' "
                f"(ad_only_selected_scripts) is off, so it runs every script there. {reason} Turn "
                f"ad_only_selected_scripts on, without '{name}' in 'Script names to apply to ADetailer' "
                "(ad_script_names): ADetailer then details the relit faces without IC-Light.")
    return (f"ADetailer would run IC-Light again in its face pass: '{name}' is in Settings > ADetailer > 'Script "
            f"names to apply to ADetailer' (ad_script_names). {reason} Remove '{name}' from ad_script_names: "
            "ADetailer then details the relit faces without IC-Light.")
