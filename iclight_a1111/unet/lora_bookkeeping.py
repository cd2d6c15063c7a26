"""Cooperation with A1111's built-in Lora extension, which edits UNet weights in place.

Lora keeps, on each module it touches, the original weights (`network_weights_backup`,
`network_bias_backup`) and the names of the networks currently baked in (`network_current_names`).
Under FP8 with "Cache FP16 weight for LoRA", A1111 also keeps an FP16 copy of each Conv2d/Linear
weight (`fp16_weight`, `fp16_bias`), from which Lora rebuilds the weight instead of its backup.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch

LORA_BACKUP_ATTRS = {"weight": "network_weights_backup", "bias": "network_bias_backup"}
LORA_STATE_ATTRS = ("network_weights_backup", "network_bias_backup", "network_current_names")
FP16_COPY_ATTRS = ("fp16_weight", "fp16_bias")


def original_tensor(module: torch.nn.Module, leaf: str) -> torch.Tensor:
    """The parameter `leaf` of `module` as the checkpoint has it, before any Lora was added in place."""
    backup = getattr(module, LORA_BACKUP_ATTRS.get(leaf, ""), None)
    if isinstance(backup, torch.Tensor):
        return backup
    return getattr(module, leaf)


def original_parameters(unet: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor, torch.nn.Parameter]]:
    """(name, original tensor, current parameter) for every parameter of `unet`."""
    for name, param in unet.named_parameters():
        module_name, _, leaf = name.rpartition(".")
        yield name, original_tensor(unet.get_submodule(module_name), leaf), param


def suspend_lora(module: torch.nn.Module) -> dict[str, Any]:
    """Hide Lora's bookkeeping of the checkpoint weights from it while IC-Light weights are in place.

    Otherwise Lora would restore the checkpoint's backup over the IC-Light weights; with a clean
    slate it backs up the IC-Light weights instead and adds its networks on top of them. The FP16
    copies are hidden too: Lora would rebuild the weight from the checkpoint's copy, dropping the
    IC-Light merge; without one it adds its networks to the weight in place, as without that setting.
    """
    saved = {attr: module.__dict__[attr] for attr in LORA_STATE_ATTRS + FP16_COPY_ATTRS if attr in module.__dict__}
    if saved:
        module.network_weights_backup = None
        module.network_bias_backup = None
        module.network_current_names = ()
        module.fp16_weight = None
        module.fp16_bias = None
    return saved


def resume_lora(module: torch.nn.Module, saved: dict[str, Any]) -> None:
    """Undo `suspend_lora`, first taking back any Lora baked into the IC-Light weights meanwhile."""
    if getattr(module, "network_current_names", ()):
        with torch.no_grad():
            for leaf, attr in LORA_BACKUP_ATTRS.items():
                backup = getattr(module, attr, None)
                if isinstance(backup, torch.Tensor) and getattr(module, leaf, None) is not None:
                    getattr(module, leaf).copy_(backup)
    for attr in LORA_STATE_ATTRS + FP16_COPY_ATTRS:
        module.__dict__.pop(attr, None)
    module.__dict__.update(saved)


def networks_on(module: torch.nn.Module, loaded_networks: Iterable[Any]) -> list[str]:
    """Names of the loaded Lora networks that have a layer for `module` (matched, as Lora matches
    them, by the `network_layer_name` it gave the module at checkpoint load)."""
    layer = getattr(module, "network_layer_name", None)
    return [net.name for net in loaded_networks if layer is not None and layer in net.modules]
