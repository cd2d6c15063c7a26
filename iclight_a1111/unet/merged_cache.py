"""Merged IC-Light weights kept between generations, so re-activation needs no file read and no merge.

Several entries (one UNet copy each: say fc and fbc for traffic that alternates), the least recently
used released first when `limit()` is reached or when one more copy would not fit (`has_room`). Each
entry is keyed by what the weights were made from: the checkpoint UNet's original weights, the
IC-Light file's content, the dtype, and where the entry lives; and all are held for one UNet object,
the loaded model they were merged for (a model switched away from or unloaded must not keep a UNet
copy alive, see `held_for`). An entry lives where its weights run ("keep": on the GPU beside the
checkpoint, so nothing moves per generation) or in RAM ("park": moved to the GPU per generation, from
RAM the merge page-locked for it when CUDA is present).

A setting changed in another thread (Settings > Apply, `POST /sdapi/v1/options`) may clear the cache while
a generation merges: the entries are changed under a lock, and a merge that began before a `clear()` is
used by its generation but not kept.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import torch

from .lora_bookkeeping import LORA_BACKUP_ATTRS, original_parameters
from .weight_swap import Slot, parameter_slots

SAMPLES_PER_PARAMETER = 64


@dataclass(frozen=True)
class MergeKey:
    checkpoint: str
    offsets: str
    dtype: str
    placement: str


@dataclass
class Entry:
    weights: dict[str, torch.Tensor]
    owner: weakref.ref  # the UNet object the entry was merged for


def unet_fingerprint(unet: torch.nn.Module) -> str:
    """A cheap content fingerprint of the UNet's original weights (under any Lora applied in place):
    names, shapes and an evenly strided sample of every parameter."""
    digest = hashlib.sha256()
    samples = []
    for name, tensor, _ in original_parameters(unet):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        flat = tensor.detach().reshape(-1)
        samples.append(flat[:: max(1, flat.numel() // SAMPLES_PER_PARAMETER)].float().cpu())
    digest.update(torch.cat(samples).numpy().tobytes())
    return digest.hexdigest()


def weights_state(slots: Iterable[Slot]) -> tuple | None:
    """What changes whenever the UNet's original weights change: each one's object, storage and
    version counter (which every in-place write through the tensor bumps: `load_state_dict`, Lora's
    restore and its additions, `copy_`; a write through `.data` does not, and A1111 makes none). None
    when a tensor keeps no version counter (made under `inference_mode`)."""
    state = []
    try:
        for module, leaf in slots:
            tensor = module.__dict__.get(LORA_BACKUP_ATTRS.get(leaf, ""))
            if not isinstance(tensor, torch.Tensor):
                tensor = module._parameters[leaf]
            state.append((id(tensor), tensor.data_ptr(), tensor._version, tensor.device, tensor.dtype))
    except RuntimeError:
        return None
    return tuple(state)


class MergedWeightsCache:
    def __init__(
        self,
        limit: Callable[[], int] = lambda: 1,
        has_room: Callable[[int, torch.device], bool] = lambda nbytes, device: True,
    ) -> None:
        self.entries: OrderedDict[MergeKey, Entry] = OrderedDict()  # least recently used first
        self.limit = limit  # how many copies may be kept
        self.has_room = has_room  # whether one more copy of `nbytes` fits on `device` without starving a generation
        self.fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # unet -> (state, fingerprint)
        self.lock = threading.RLock()  # held while the entries change; never during a merge
        self.clears = 0  # how many times the cache was cleared: a merge begun before the last one is not kept

    def fingerprint(self, unet: torch.nn.Module, compute: Callable[[torch.nn.Module], str] = unet_fingerprint,
                    slots: Mapping[str, Slot] | None = None) -> str:
        """`compute(unet)`, reused while none of the UNet's original weights was written to or replaced:
        sampling every weight costs more than the rest of a cached activation."""
        state = weights_state((slots or parameter_slots(unet)).values())
        known = self.fingerprints.get(unet)
        if state is not None and known is not None and known[0] == state:
            return known[1]
        fingerprint = compute(unet)
        if state is not None:
            self.fingerprints[unet] = (state, fingerprint)
        return fingerprint

    def weights_for(
        self, key: MergeKey, owner: torch.nn.Module, merge: Callable[[], dict[str, torch.Tensor]], in_ram: bool,
    ) -> dict[str, torch.Tensor]:
        """The cached weights when an entry for `key` was merged for `owner`; otherwise `merge()` (which
        merges in RAM when `in_ram`), kept for `owner` after making room for it, unless the cache was cleared while it
        merged. Entries of other UNets are dropped."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and entry.owner() is owner:
                self.entries.move_to_end(key)
                return entry.weights
            self.forget_others(owner)
            self.entries.pop(key, None)
            self.make_room(owner, torch.device("cpu") if in_ram else next(owner.parameters()).device)
            clears = self.clears
        merged = merge()
        with self.lock:
            if self.clears == clears:
                self.entries[key] = Entry(merged, weakref.ref(owner))
        return merged

    def make_room(self, unet: torch.nn.Module, device: torch.device) -> None:
        """Release the least recently used entries until one more copy of `unet` is allowed and fits."""
        nbytes = sum(p.numel() * p.element_size() for p in unet.parameters())
        with self.lock:
            while self.entries and (len(self.entries) >= max(1, self.limit()) or not self.has_room(nbytes, device)):
                self.entries.popitem(last=False)

    def forget_others(self, unet: torch.nn.Module | None) -> bool:
        """Drop the entries not merged for `unet`; whether any was."""
        with self.lock:
            others = [key for key, entry in self.entries.items() if entry.owner() is not unet or unet is None]
            for key in others:
                del self.entries[key]
        return bool(others)

    def held_for(self, unet: torch.nn.Module) -> bool:
        """Whether an entry is held and was merged for this very UNet object."""
        with self.lock:
            return unet is not None and any(entry.owner() is unet for entry in self.entries.values())

    @property
    def key(self) -> MergeKey | None:
        """The key of the most recently used entry."""
        with self.lock:
            return next(reversed(self.entries), None)

    @property
    def weights(self) -> dict[str, torch.Tensor] | None:
        """The weights of the most recently used entry."""
        with self.lock:
            return self.entries[self.key].weights if self.entries else None

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.clears += 1
