"""Mirrors backend/patcher/lora.py (Forge dfdcbab6):

- `merge_lora_to_weight` (lines 85-140 and its end), for "diff" patches: the weight in float32 (a clone, or
  converted), `strength_model` applied, each diff added times its strength; a 4-D diff of another shape
  widens the weight with zeros to the larger of both shapes first (127-136), other shapes are not merged
  (138); the sum back in the weight's dtype.
- `LoraLoader.refresh` (351-447): nothing to do when the list of patch identifiers equals the one merged
  last (353-356: identifiers only, not their tensors); else every weight kept aside is put back (372-388),
  then each patched weight is kept aside (on the offload device) and replaced by its merge (392-441).
Departures: "diff" patches only (IC-Light's and Lora-like tests need no other); no quantized weights; each
merge is recorded in `MERGES` for tests to count."""
import torch

from backend import memory_management, utils

MERGES = []  # (key, shape) of every weight merged


@torch.inference_mode()
def merge_lora_to_weight(patches, weight, key="online_lora", computation_dtype=torch.float32):
    dtype = weight.dtype
    weight = weight.clone() if computation_dtype == weight.dtype else weight.to(dtype=computation_dtype)
    for strength, v, strength_model, offset, function in patches:
        if strength_model != 1.0:
            weight *= strength_model
        diff = v[0]
        if strength == 0.0:
            continue
        if diff.shape != weight.shape:
            if diff.ndim == weight.ndim == 4:
                new_shape = [max(n, m) for n, m in zip(weight.shape, diff.shape)]
                new_diff = strength * memory_management.cast_to_device(diff, weight.device, weight.dtype)
                wide = torch.zeros(size=new_shape).to(weight)
                wide[:weight.shape[0], :weight.shape[1], :weight.shape[2], :weight.shape[3]] = weight
                wide[:new_diff.shape[0], :new_diff.shape[1], :new_diff.shape[2], :new_diff.shape[3]] += new_diff
                weight = wide.contiguous().clone()
            else:
                print(f"WARNING SHAPE MISMATCH {key} WEIGHT NOT MERGED {diff.shape} != {weight.shape}")
        else:
            weight += strength * memory_management.cast_to_device(diff, weight.device, weight.dtype)
    return weight.to(dtype=dtype)


class LoraLoader:
    def __init__(self, model):
        self.model = model
        self.backup = {}
        self.loaded_hash = str([])

    @torch.inference_mode()
    def refresh(self, lora_patches, offload_device=torch.device("cpu"), force_refresh=False):
        hashes = str(list(lora_patches.keys()))
        if hashes == self.loaded_hash and not force_refresh:
            return
        all_patches = {}
        for (_, _, _, online_mode), patches in lora_patches.items():
            for key, current in patches.items():
                all_patches[(key, online_mode)] = all_patches.get((key, online_mode), []) + current
        for k, w in self.backup.items():
            utils.set_attr_raw(self.model, k, w if isinstance(w, torch.nn.Parameter) else torch.nn.Parameter(w, requires_grad=False))
        self.backup = {}
        for (key, online_mode), current in all_patches.items():
            _, _, weight = utils.get_attr_with_parent(self.model, key)
            assert isinstance(weight, torch.nn.Parameter), f"Wrong LoRA Key: {key}"
            if key not in self.backup:
                self.backup[key] = weight.to(device=offload_device)
            weight = merge_lora_to_weight(current, weight, key, computation_dtype=torch.float32)
            MERGES.append((key, tuple(weight.shape)))
            utils.set_attr_raw(self.model, key, torch.nn.Parameter(weight, requires_grad=False))
        self.loaded_hash = hashes
