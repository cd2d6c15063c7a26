"""Mirrors backend/memory_management.py (Forge dfdcbab6): `load_models_gpu` (lines 614-690) loads each
patcher that is not loaded already (a `LoadedModel` is equal to another holding the very same patcher,
540-541), first unloading the loaded clones of it (552-560); loading (`LoadedModel.model_load`, 456-523)
ends with `self.model.refresh_loras()` (518), where Forge merges patches into the weights.
`load_model_gpu` (693), `cast_to_device`, `get_torch_device` (86), `intermediate_device` (820).
Departures: one device, the CPU; no memory estimates, offloading or swapping."""
import torch

current_loaded_models = []
signal_empty_cache = False
OOM_EXCEPTION = torch.cuda.OutOfMemoryError


class LoadedModel:
    def __init__(self, model):
        self.model = model
        self.device = model.load_device

    def model_load(self):
        self.model.refresh_loras()

    def __eq__(self, other):
        return self.model is other.model


def unload_model_clones(model):
    for i in reversed(range(len(current_loaded_models))):
        if model.is_clone(current_loaded_models[i].model):
            current_loaded_models.pop(i)


def load_models_gpu(models, memory_required=0, hard_memory_preservation=0):
    for model in models:
        loaded = LoadedModel(model)
        if loaded in current_loaded_models:
            current_loaded_models.insert(0, current_loaded_models.pop(current_loaded_models.index(loaded)))
            continue
        unload_model_clones(model)
        current_loaded_models.insert(0, loaded)
        loaded.model_load()


def load_model_gpu(model):
    return load_models_gpu([model])


def unload_all_models():
    current_loaded_models.clear()


def cast_to_device(tensor, device, dtype, copy=False):
    return tensor.to(device=device, dtype=dtype, copy=copy)


def get_torch_device():
    return torch.device("cpu")


def intermediate_device():
    return torch.device("cpu")


def dtype_size(dtype):
    return torch.empty((), dtype=dtype).element_size()
