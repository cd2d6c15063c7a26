"""IC-Light's settings (Settings > Stable Diffusion > IC-Light), and the merged-weight cache released
with the checkpoint: on A1111. On Forge, Forge merges, keeps and restores the weights itself; the offsets
IC-Light keeps in RAM are released with the checkpoint."""
import gradio as gr
from modules import script_callbacks, shared

from iclight_a1111.webui import checkpoint_switch, merged_weights
from iclight_a1111.webui.backend_choice import host, on_forge

# (section id, label, category id): listed under "Stable Diffusion" beside VAE and Extra Networks,
# as A1111's own sections are (modules/shared_options.py registers the "sd" category).
SECTION = ("iclight", "IC-Light", "sd")


def add_settings() -> None:
    options = shared.options_section(SECTION, {
        merged_weights.CACHE_OPTION: shared.OptionInfo(
            True,
            "Keep merged IC-Light weights between generations",
            onchange=merged_weights.on_cache_setting_changed,
        ).info("re-activation without reading or merging; off frees one UNet copy"),
        merged_weights.COPIES_OPTION: shared.OptionInfo(
            "Automatic",
            "Merged IC-Light copies kept (one per model file: fc, fbc...)",
            gr.Dropdown,
            {"choices": merged_weights.COPIES_CHOICES},
            onchange=merged_weights.release_merged_weights,
        ).info("each copy is one more UNet of VRAM (Keep on GPU) or RAM (Park in RAM); switching to a kept model "
               "reads no file; the least recently used goes first; Automatic: as many as leave a generation room "
               "(2 GB of VRAM, 4 GB of RAM) after the checkpoint"),
        merged_weights.PLACEMENT_OPTION: shared.OptionInfo(
            "Automatic",
            "Checkpoint UNet while IC-Light runs (under --medvram/--lowvram it is always parked, whatever is "
            "chosen here)",
            gr.Radio,
            {"choices": list(merged_weights.PLACEMENT_CHOICES)},
            onchange=merged_weights.release_merged_weights,
        ).info("Keep on GPU: fastest, no weights move per generation, one more UNet of VRAM; Park in RAM: VRAM as "
               "plain generations; Automatic: keep when a second UNet fits in free VRAM"),
    })
    for key, info in options.items():
        shared.opts.add_option(key, info)


if not on_forge():
    script_callbacks.on_ui_settings(add_settings)
    script_callbacks.on_model_loaded(merged_weights.release_merged_weights)
    checkpoint_switch.install()  # released before the next checkpoint's weights load, not only after
else:
    checkpoint_switch.install_on_forge(host().release_kept_offsets)
