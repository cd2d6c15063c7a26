"""IC-Light in A1111's model plumbing: every IC-Light file as an SD Unet option, and the cache setting."""
from modules import script_callbacks, shared

from iclight_a1111 import a1111_adapter

script_callbacks.on_list_unets(a1111_adapter.add_unet_options)


def add_settings() -> None:
    shared.opts.add_option(a1111_adapter.CACHE_OPTION, shared.OptionInfo(
        True,
        "Keep merged IC-Light weights in RAM between generations (re-activation without reading or merging; "
        "off frees one UNet copy of RAM)",
        section=("iclight", "IC-Light"),
        onchange=a1111_adapter.on_cache_setting_changed,
    ))


script_callbacks.on_ui_settings(add_settings)
