"""Mirrors backend/patcher/base.py (Forge dfdcbab6) `ModelPatcher` lines 51-127: a patcher holds a model shared
by all its clones (each model gets one `LoraLoader`, 63-66); `clone` (79-84) copies the patches and
deep-copies the model options; `add_patches` (91-117) takes keyword arguments only, keeps the patches of
keys the model has (`named_parameters`) under `(filename, strength_patch, strength_model, online_mode)`
and returns the keys it took; `refresh_loras` (125-127) hands the patches to the loader. Departures: no
object patches, no device moves."""
import copy

from backend.patcher.lora import LoraLoader


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, current_device=None, **kwargs):
        self.model = model
        self.lora_patches = {}
        self.object_patches = {}
        self.model_options = {"transformer_options": {}}
        self.load_device, self.offload_device = load_device, offload_device
        self.current_device = offload_device if current_device is None else current_device
        self.size = size
        if not hasattr(model, "lora_loader"):
            model.lora_loader = LoraLoader(model)
        self.lora_loader = model.lora_loader

    def clone(self):
        n = ModelPatcher(self.model, self.load_device, self.offload_device, self.size, self.current_device)
        n.lora_patches = self.lora_patches.copy()
        n.object_patches = self.object_patches.copy()
        n.model_options = copy.deepcopy(self.model_options)
        return n

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def add_patches(self, *, filename, patches, strength_patch=1.0, strength_model=1.0, online_mode=False):
        identifier = (filename, strength_patch, strength_model, online_mode)
        model_keys = {k for k, _ in self.model.named_parameters()}
        taken, these = set(), {}
        for k in patches:
            key, offset, function = (k, None, None) if isinstance(k, str) else (k[0], k[1], k[2] if len(k) > 2 else None)
            if key in model_keys:
                taken.add(k)
                these.setdefault(key, []).append([strength_patch, patches[k], strength_model, offset, function])
        self.lora_patches[identifier] = these
        return taken

    def has_online_lora(self):
        return any(online for (_, _, _, online) in self.lora_patches)

    def refresh_loras(self):
        self.lora_loader.refresh(lora_patches=self.lora_patches, offload_device=self.offload_device)

    def set_model_unet_function_wrapper(self, unet_wrapper_function):
        self.model_options["model_function_wrapper"] = unet_wrapper_function
