"""Mirrors modules/script_callbacks.py (v1.10.1) lines 467-610 for the callbacks the extension registers:
`on_list_unets`, `on_before_ui`, `on_ui_settings`, `on_model_loaded`, `on_infotext_pasted`."""
callbacks_list_unets = []
callbacks_before_ui = []
callbacks_ui_settings = []
callbacks_model_loaded = []
callbacks_infotext_pasted = []


def on_list_unets(callback):
    """`callback(unet_options)` appends `sd_unet.SdUnetOption` objects to the list."""
    callbacks_list_unets.append(callback)


def list_unets_callback():
    res = []
    for callback in callbacks_list_unets:
        callback(res)
    return res


def on_before_ui(callback):
    """`callback()` runs once all scripts are loaded, before the UI is built."""
    callbacks_before_ui.append(callback)


def before_ui_callback():
    for callback in callbacks_before_ui:
        callback()


def on_ui_settings(callback):
    callbacks_ui_settings.append(callback)


def ui_settings_callback():
    for callback in callbacks_ui_settings:
        callback()


def on_model_loaded(callback):
    """`callback(sd_model)` runs after a checkpoint is loaded (also when only its weights are reloaded)."""
    callbacks_model_loaded.append(callback)


def model_loaded_callback(sd_model):
    for callback in callbacks_model_loaded:
        callback(sd_model)


def on_infotext_pasted(callback):
    """`callback(infotext, params)` may change the parsed params before they fill the UI."""
    callbacks_infotext_pasted.append(callback)


def infotext_pasted_callback(infotext, params):
    for callback in callbacks_infotext_pasted:
        callback(infotext, params)
