"""Mirrors modules/sd_models.py (v1.10.1): `CheckpointInfo` (line 56; the fields read: filename, title,
model_name, short_title), the `checkpoints_list` and `checkpoint_aliases` registries (`register`, lines 102-105:
title and model name as aliases here) and `get_closet_checkpoint_match` (line 183:
exact title, then model name, then a title containing the search, shortest first), and the checkpoint
switch: `SkipWritingToConfig` (line 350), `SdModelData.set_sd_model` (lines 703-715), `send_model_to_cpu` /
`send_model_to_trash` (lines 738-765), `unload_model_weights` (lines 1005-1008), `load_model` (lines 786-875: the old model trashed, the new one built, the
`model_loaded` callbacks), `load_model_weights` (lines 410-470: the selected checkpoint written to the
settings unless `SkipWritingToConfig`), `reuse_model_from_already_loaded` (lines 878-935) and
`reload_model_weights` (lines 940-1000: the early returns, then `apply_unet("None")` before loading,
weights loaded into the same model when the config matches, else a new model; the callbacks; then
`apply_unet()`).

Departures: A1111's `shared.sd_model` reads `model_data.sd_model`; here `model_data.sd_model`
reads and writes `shared.sd_model`. A checkpoint's file content is `CheckpointInfo.content`, a callable
returning a freshly built model with the checkpoint's weights (its state dict is "the file"), and
`CheckpointInfo.config` names its architecture (A1111 finds the config from the state dict) and the
family flags `is_sd1` / `is_sd2` / `is_sdxl` (A1111's `set_model_type`, lines 379-400). The VAE, hijack,
fp8 and text-inversion steps are left out.
"""
from dataclasses import dataclass, field
from typing import Any, Callable

from modules import devices, script_callbacks, sd_unet, shared

checkpoints_list = {}
checkpoint_aliases = {}


@dataclass(frozen=True)
class CheckpointInfo:
    filename: str
    title: str
    model_name: str
    short_title: str = ""
    content: Callable[[], Any] = field(default=None, compare=False, repr=False)
    config: str = field(default="sd1", compare=False)

    def register(self):
        checkpoints_list[self.title] = self
        checkpoint_aliases.update({self.title: self, self.model_name: self})
        return self


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoints_list.get(search_string)
    if info is not None:
        return info
    found = sorted([info for info in checkpoints_list.values() if search_string == info.model_name], key=lambda x: len(x.title))
    if found:
        return found[0]
    found = sorted([info for info in checkpoints_list.values() if search_string in info.title], key=lambda x: len(x.title))
    return found[0] if found else None


def select_checkpoint():
    return checkpoints_list[shared.opts.sd_model_checkpoint]


class SkipWritingToConfig:
    """With it, a checkpoint switch (hires checkpoint, refiner) leaves `opts.sd_model_checkpoint` alone."""

    skip = False
    previous = None

    def __enter__(self):
        self.previous = SkipWritingToConfig.skip
        SkipWritingToConfig.skip = True
        return self

    def __exit__(self, *args):
        SkipWritingToConfig.skip = self.previous


class SdModelData:
    def __init__(self):
        self.loaded_sd_models = []

    @property
    def sd_model(self):
        return shared.sd_model

    @sd_model.setter
    def sd_model(self, v):
        shared.sd_model = v

    def set_sd_model(self, v, already_loaded=False):
        self.sd_model = v
        try:
            self.loaded_sd_models.remove(v)
        except ValueError:
            pass
        if v is not None:
            self.loaded_sd_models.insert(0, v)


model_data = SdModelData()


def send_model_to_cpu(m):
    if m is not None:
        m.to(devices.cpu)
    devices.torch_gc()


def unload_model_weights(sd_model=None, info=None):
    """Lines 1005-1008: the checkpoint to RAM (the API's unload-checkpoint, Settings' "Unload SD checkpoint to RAM")."""
    send_model_to_cpu(sd_model or shared.sd_model)
    return sd_model


def send_model_to_trash(m):
    m.to(device="meta")
    devices.torch_gc()


def send_model_to_device(m):
    if not m.lowvram:
        m.to(devices.device)


def load_model_weights(model, checkpoint_info, state_dict):
    model.load_state_dict(state_dict)
    if not SkipWritingToConfig.skip:
        shared.opts.sd_model_checkpoint = checkpoint_info.title
    model.sd_model_checkpoint = checkpoint_info.filename
    model.sd_checkpoint_info = checkpoint_info


def get_checkpoint_state_dict(checkpoint_info):
    return checkpoint_info.content().state_dict()


def load_model(checkpoint_info=None, already_loaded_state_dict=None):
    checkpoint_info = checkpoint_info or select_checkpoint()
    if model_data.sd_model:
        send_model_to_trash(model_data.sd_model)
        model_data.sd_model = None
        devices.torch_gc()
    sd_model = checkpoint_info.content()
    sd_model.used_config = checkpoint_info.config
    sd_model.lowvram = False
    for family in ("sd1", "sd2", "sdxl"):
        setattr(sd_model, f"is_{family}", checkpoint_info.config == family)
    load_model_weights(sd_model, checkpoint_info, already_loaded_state_dict or sd_model.state_dict())
    send_model_to_device(sd_model)
    model_data.set_sd_model(sd_model)
    script_callbacks.model_loaded_callback(sd_model)
    return sd_model


def reuse_model_from_already_loaded(sd_model, checkpoint_info):
    if sd_model is not None and sd_model.sd_checkpoint_info.filename == checkpoint_info.filename:
        return sd_model

    if shared.opts.sd_checkpoints_keep_in_cpu:
        send_model_to_cpu(sd_model)

    already_loaded = None
    for i in reversed(range(len(model_data.loaded_sd_models))):
        loaded_model = model_data.loaded_sd_models[i]
        if loaded_model.sd_checkpoint_info.filename == checkpoint_info.filename:
            already_loaded = loaded_model
            continue
        if len(model_data.loaded_sd_models) > shared.opts.sd_checkpoints_limit > 0:
            del model_data.loaded_sd_models[i]
            send_model_to_trash(loaded_model)

    if already_loaded is not None:
        send_model_to_device(already_loaded)
        model_data.set_sd_model(already_loaded, already_loaded=True)
        if not SkipWritingToConfig.skip:
            shared.opts.sd_model_checkpoint = already_loaded.sd_checkpoint_info.title
        return model_data.sd_model
    elif shared.opts.sd_checkpoints_limit > 1 and len(model_data.loaded_sd_models) < shared.opts.sd_checkpoints_limit:
        model_data.sd_model = None
        load_model(checkpoint_info)
        return model_data.sd_model
    elif len(model_data.loaded_sd_models) > 0:
        sd_model = model_data.loaded_sd_models.pop()
        model_data.sd_model = sd_model
        return sd_model
    else:
        return None


def reload_model_weights(sd_model=None, info=None, forced_reload=False):
    checkpoint_info = info or select_checkpoint()

    if not sd_model:
        sd_model = model_data.sd_model

    if sd_model is None:
        current_checkpoint_info = None
    else:
        current_checkpoint_info = sd_model.sd_checkpoint_info
        if sd_model.sd_model_checkpoint == checkpoint_info.filename and not forced_reload:
            return sd_model

    sd_model = reuse_model_from_already_loaded(sd_model, checkpoint_info)
    if not forced_reload and sd_model is not None and sd_model.sd_checkpoint_info.filename == checkpoint_info.filename:
        return sd_model

    if sd_model is not None:
        sd_unet.apply_unet("None")
        send_model_to_cpu(sd_model)

    state_dict = get_checkpoint_state_dict(checkpoint_info)

    if sd_model is None or checkpoint_info.config != sd_model.used_config:
        if sd_model is not None:
            send_model_to_trash(sd_model)
        load_model(checkpoint_info, already_loaded_state_dict=state_dict)
        return model_data.sd_model

    try:
        load_model_weights(sd_model, checkpoint_info, state_dict)
    except Exception:
        load_model_weights(sd_model, current_checkpoint_info, get_checkpoint_state_dict(current_checkpoint_info))
        raise
    finally:
        if not sd_model.lowvram:
            sd_model.to(devices.device)
        script_callbacks.model_loaded_callback(sd_model)

    model_data.set_sd_model(sd_model)
    sd_unet.apply_unet()
    return sd_model
