"""IC-Light's settings (Settings > IC-Light), and the merged-weight cache released with the checkpoint."""
import gradio as gr
from modules import script_callbacks, shared

from iclight_a1111 import a1111_adapter


def add_settings() -> None:
    section = ("iclight", "IC-Light")
    shared.opts.add_option(a1111_adapter.CACHE_OPTION, shared.OptionInfo(
        True,
        "Keep merged IC-Light weights between generations (re-activation without reading or merging; "
        "off frees one UNet copy)",
        section=section,
        onchange=a1111_adapter.on_cache_setting_changed,
    ))
    shared.opts.add_option(a1111_adapter.PLACEMENT_OPTION, shared.OptionInfo(
        "Automatic",
        "Checkpoint UNet while IC-Light runs: Keep on GPU (fastest: no weights move per generation, one more "
        "UNet of VRAM), Park in RAM (VRAM as plain generations), Automatic (keep when a second UNet fits in free "
        "VRAM). Under --medvram/--lowvram it is always parked, whatever is chosen here",
        gr.Radio,
        {"choices": list(a1111_adapter.PLACEMENT_CHOICES)},
        section=section,
        onchange=a1111_adapter.release_merged_weights,
    ))


script_callbacks.on_ui_settings(add_settings)
script_callbacks.on_model_loaded(a1111_adapter.release_merged_weights)
