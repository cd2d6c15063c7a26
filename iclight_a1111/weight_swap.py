"""Put merged IC-Light weights into a UNet and take them out again, exactly.

Patching replaces each `Parameter` object of the UNet by a new one holding the merged tensor and
keeps the original objects aside; unpatching puts those very objects back. The checkpoint's tensors
are never written to, so restoring is exact and costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .key_table import FIRST_CONV_LDM
from .lora_bookkeeping import resume_lora, suspend_lora

FIRST_CONV_MODULE = FIRST_CONV_LDM.rpartition(".")[0]


@dataclass
class UnetBackup:
    """What `patch_unet` took out of the UNet."""

    parameters: dict[str, torch.nn.Parameter] = field(default_factory=dict)
    lora_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_conv_in_channels: int | None = None


def patch_unet(unet: torch.nn.Module, merged: Mapping[str, torch.Tensor]) -> UnetBackup:
    """Swap `merged` into `unet` (widening its first conv) and return what is needed to undo it."""
    backup = UnetBackup()
    try:
        for name, tensor in merged.items():
            module_name, _, leaf = name.rpartition(".")
            module = unet.get_submodule(module_name)
            if module_name not in backup.lora_states:
                backup.lora_states[module_name] = suspend_lora(module)
            backup.parameters[name] = module._parameters[leaf]
            module._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
        first_conv = unet.get_submodule(FIRST_CONV_MODULE)
        backup.first_conv_in_channels = first_conv.in_channels
        first_conv.in_channels = merged[FIRST_CONV_LDM].shape[1]
    except BaseException:
        unpatch_unet(unet, backup)
        raise
    return backup


def unpatch_unet(unet: torch.nn.Module, backup: UnetBackup) -> None:
    """Put back exactly what `patch_unet` took out."""
    for module_name, saved in backup.lora_states.items():
        resume_lora(unet.get_submodule(module_name), saved)
    for name, original in backup.parameters.items():
        module_name, _, leaf = name.rpartition(".")
        unet.get_submodule(module_name)._parameters[leaf] = original
    if backup.first_conv_in_channels is not None:
        unet.get_submodule(FIRST_CONV_MODULE).in_channels = backup.first_conv_in_channels
