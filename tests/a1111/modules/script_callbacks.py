"""Mirrors modules/script_callbacks.py (v1.10.1) for the `list_unets` callback only."""
callbacks_list_unets = []


def on_list_unets(callback):
    """`callback(unet_options)` appends `sd_unet.SdUnetOption` objects to the list."""
    callbacks_list_unets.append(callback)


def list_unets_callback():
    res = []
    for callback in callbacks_list_unets:
        callback(res)
    return res


callbacks_before_ui = []


def on_before_ui(callback):
    """Mirrors `on_before_ui`: `callback()` runs once all scripts are loaded, before the UI is built."""
    callbacks_before_ui.append(callback)


def before_ui_callback():
    for callback in callbacks_before_ui:
        callback()
