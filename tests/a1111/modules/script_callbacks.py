"""Mirrors modules/script_callbacks.py (v1.10.1) lines 253-259, 362-367 and 456-610 for the callbacks the
extension registers: `on_list_unets`, `on_before_ui`, `on_ui_settings`, `on_model_loaded`,
`on_infotext_pasted`, `on_app_started`, `on_after_component`, `on_image_grid` (lines 104-108, 370-375,
564-569: `ImageGridLoopParams(imgs, cols, rows)`, whose fields a callback may replace); and those other
extensions use during sampling: `on_cfg_denoiser` / `on_cfg_denoised` with their parameter objects (lines
45-83, 330-343, 523-537) and `remove_callbacks_for_function` (447-453). As in A1111, the dispatchers of
`app_started`, `after_component`, `cfg_denoiser` and `cfg_denoised` report a callback's exception and go on
(`report_exception`)."""
import traceback

reported_errors = []
callbacks_app_started = []
callbacks_after_component = []
callbacks_list_unets = []
callbacks_before_ui = []
callbacks_ui_settings = []
callbacks_model_loaded = []
callbacks_infotext_pasted = []
callbacks_cfg_denoiser = []
callbacks_cfg_denoised = []
callbacks_image_grid = []


class ImageGridLoopParams:
    def __init__(self, imgs, cols, rows):
        self.imgs = imgs
        self.cols = cols
        self.rows = rows


def on_image_grid(callback):
    """`callback(params)` runs before each image grid is drawn and may change `params`."""
    callbacks_image_grid.append(callback)


def image_grid_callback(params):
    for callback in callbacks_image_grid:
        try:
            callback(params)
        except Exception:
            report_exception(callback, "image_grid")


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


def report_exception(callback, name):
    reported_errors.append(f"Error executing callback {name} for {callback}\n{traceback.format_exc()}")


def on_app_started(callback):
    """`callback(demo, app)` runs once the webui started: `demo` is the gradio Blocks (None with
    --nowebui), `app` the FastAPI app that already carries `/sdapi` (webui.py 38 and 119)."""
    callbacks_app_started.append(callback)


def app_started_callback(demo, app):
    for callback in callbacks_app_started:
        try:
            callback(demo, app)
        except Exception:
            report_exception(callback, "app_started_callback")


def on_after_component(callback):
    """`callback(component, **kwargs)` runs after every gradio component is created, kwargs as given
    to the component (`elem_id`, ...)."""
    callbacks_after_component.append(callback)


def after_component_callback(component, **kwargs):
    for callback in callbacks_after_component:
        try:
            callback(component, **kwargs)
        except Exception:
            report_exception(callback, "after_component_callback")


class CFGDenoiserParams:
    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond, denoiser=None):
        self.x, self.image_cond, self.sigma = x, image_cond, sigma
        self.sampling_step, self.total_sampling_steps = sampling_step, total_sampling_steps
        self.text_cond, self.text_uncond, self.denoiser = text_cond, text_uncond, denoiser


class CFGDenoisedParams:
    def __init__(self, x, sampling_step, total_sampling_steps, inner_model):
        self.x, self.sampling_step, self.total_sampling_steps, self.inner_model = x, sampling_step, total_sampling_steps, inner_model


def on_cfg_denoiser(callback):
    """`callback(params: CFGDenoiserParams)` before the UNet calls of a CFGDenoiser step; may change the rows."""
    callbacks_cfg_denoiser.append(callback)


def on_cfg_denoised(callback):
    """`callback(params: CFGDenoisedParams)` after the UNet calls of a CFGDenoiser step."""
    callbacks_cfg_denoised.append(callback)


def cfg_denoiser_callback(params):
    for callback in list(callbacks_cfg_denoiser):
        try:
            callback(params)
        except Exception:
            report_exception(callback, "cfg_denoiser_callback")


def cfg_denoised_callback(params):
    for callback in list(callbacks_cfg_denoised):
        try:
            callback(params)
        except Exception:
            report_exception(callback, "cfg_denoised_callback")


def remove_callbacks_for_function(callback_func):
    for callbacks in (callbacks_cfg_denoiser, callbacks_cfg_denoised):
        callbacks[:] = [c for c in callbacks if c != callback_func]
