"""Put merged IC-Light weights into a UNet and take them out again, exactly, wherever each part is.

Patching replaces each `Parameter` object of the UNet by the merged one (a new one where it must move
to the device of the parameter it replaces), and keeps the original objects aside (in RAM when
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
Slot = tuple[torch.nn.Module, str]  # a parameter's module and its name there


@dataclass
class UnetBackup:
    """What `patch_unet` took out of the UNet, and what of it is not back yet."""

    slots: dict[str, Slot] = field(default_factory=dict)
    parameters: dict[str, torch.nn.Parameter] = field(default_factory=dict)
    lora_states: dict[torch.nn.Module, dict[str, Any]] = field(default_factory=dict)
    first_conv_in_channels: int | None = None
    misplaced: dict[str, torch.device] = field(default_factory=dict)  # put back, but not yet on this device

    @property
    def restored(self) -> bool:
        return not (self.parameters or self.lora_states or self.misplaced or self.first_conv_in_channels is not None)


def parameter_slots(unet: torch.nn.Module) -> dict[str, Slot]:
    """Every parameter's module and leaf name, by its `named_parameters` name, from one walk of the
    modules (looking each module up by its dotted name costs more than the whole swap)."""
    return {
        f"{prefix}.{leaf}" if prefix else leaf: (module, leaf)
        for prefix, module in unet.named_modules()
        for leaf, param in module._parameters.items()
        if param is not None
    }


def patch_unet(unet: torch.nn.Module, merged: Mapping[str, torch.Tensor], park: bool, moves: DeviceMoves,
               slots: dict[str, Slot] | None = None) -> UnetBackup:
    """Swap `merged` into `unet` (widening its first conv); with `park`, the checkpoint's own weights
    wait in RAM. Returns what is needed to undo it. `slots`: `parameter_slots(unet)`, when known."""
    backup = UnetBackup(slots=slots or parameter_slots(unet))
    try:
        for name, tensor in merged.items():
            module, leaf = backup.slots[name]
            if module not in backup.lora_states:
                backup.lora_states[module] = suspend_lora(module)
            original = module._parameters[leaf]
            replacement = moves.to(tensor, original.device)
            if not isinstance(replacement, torch.nn.Parameter):  # merged parameters are put in as they are
                replacement = torch.nn.Parameter(replacement, requires_grad=False)
            backup.parameters[name] = original
            module._parameters[leaf] = replacement
            if park:
                original.data = moves.to(original.data, "cpu")
        first_conv = backup.slots[FIRST_CONV_LDM][0]
        backup.first_conv_in_channels = first_conv.in_channels
        first_conv.in_channels = merged[FIRST_CONV_LDM].shape[1]
    except BaseException:
        unpatch_unet(unet, backup, moves)
        raise
    return backup


def unpatch_unet(unet: torch.nn.Module, backup: UnetBackup, moves: DeviceMoves) -> None:
    """Put back exactly what `patch_unet` took out, where the replacements are now.

    Each step is dropped from `backup` once done, so that after a failure calling this again finishes
    the job. Putting a parameter object back needs no memory; moving it to its device may (a parked
    weight going back to the GPU): a weight that cannot move is put back where it is, named in
    `backup.misplaced`, and the error is raised after everything else is back."""
    slots = backup.slots or parameter_slots(unet)
    for module in list(backup.lora_states):
        resume_lora(module, backup.lora_states.pop(module))
    failure = None
    for name in list(backup.parameters):
        module, leaf = slots[name]
        original = backup.parameters.pop(name)
        device = module._parameters[leaf].device
        module._parameters[leaf] = original
        failure = move_back(name, original, device, backup, moves) or failure
    for name, device in list(backup.misplaced.items()):
        if failure is None:
            del backup.misplaced[name]
            failure = move_back(name, slots[name][0]._parameters[slots[name][1]], device, backup, moves)
    if backup.first_conv_in_channels is not None:
        slots[FIRST_CONV_LDM][0].in_channels = backup.first_conv_in_channels
        backup.first_conv_in_channels = None
    if failure is not None:
        raise failure


def move_back(name: str, param: torch.nn.Parameter, device: torch.device, backup: UnetBackup,
              moves: DeviceMoves) -> Exception | None:
    """Move a restored parameter to `device`; on failure record it in `backup.misplaced`."""
    try:
        param.data = moves.to(param.data, device)
    except Exception as e:  # out of memory: the weight stays where it is, in RAM
        backup.misplaced[name] = device
        return e
    return None
