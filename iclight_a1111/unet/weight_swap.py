"""Put merged IC-Light weights into a UNet and take them out again, exactly, wherever each part is.

Patching replaces each `Parameter` object of the UNet by a new one holding the merged tensor, placed
on the device of the parameter it replaces, and keeps the original objects aside (in RAM when
parked). Unpatching puts those very objects back, each on the device its replacement is on at that
moment: `--medvram`/`--lowvram` hooks move modules during a generation, and must find them where
they left them. The checkpoint's values are never written to, so restoring is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .device_moves import DeviceMoves
from .key_table import FIRST_CONV_LDM
from .lora_bookkeeping import resume_lora, suspend_lora

FIRST_CONV_MODULE = FIRST_CONV_LDM.rpartition(".")[0]


@dataclass
class UnetBackup:
    """What `patch_unet` took out of the UNet."""

    parameters: dict[str, torch.nn.Parameter] = field(default_factory=dict)
    lora_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_conv_in_channels: int | None = None


def patch_unet(unet: torch.nn.Module, merged: Mapping[str, torch.Tensor], park: bool, moves: DeviceMoves) -> UnetBackup:
    """Swap `merged` into `unet` (widening its first conv); with `park`, the checkpoint's own weights
    wait in RAM. Returns what is needed to undo it."""
    backup = UnetBackup()
    try:
        for name, tensor in merged.items():
            module_name, _, leaf = name.rpartition(".")
            module = unet.get_submodule(module_name)
            if module_name not in backup.lora_states:
                backup.lora_states[module_name] = suspend_lora(module)
            original = module._parameters[leaf]
            replacement = torch.nn.Parameter(moves.to(tensor, original.device), requires_grad=False)
            backup.parameters[name] = original
            module._parameters[leaf] = replacement
            if park:
                original.data = moves.to(original.data, "cpu")
        first_conv = unet.get_submodule(FIRST_CONV_MODULE)
        backup.first_conv_in_channels = first_conv.in_channels
        first_conv.in_channels = merged[FIRST_CONV_LDM].shape[1]
    except BaseException:
        unpatch_unet(unet, backup, moves)
        raise
    return backup


def unpatch_unet(unet: torch.nn.Module, backup: UnetBackup, moves: DeviceMoves) -> None:
    """Put back exactly what `patch_unet` took out, where the replacements are now."""
    for module_name, saved in backup.lora_states.items():
        resume_lora(unet.get_submodule(module_name), saved)
    for name, original in backup.parameters.items():
        module_name, _, leaf = name.rpartition(".")
        module = unet.get_submodule(module_name)
        original.data = moves.to(original.data, module._parameters[leaf].device)
        module._parameters[leaf] = original
    if backup.first_conv_in_channels is not None:
        unet.get_submodule(FIRST_CONV_MODULE).in_channels = backup.first_conv_in_channels
