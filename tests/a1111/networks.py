"""Mirrors the built-in Lora extension's extensions-builtin/Lora/networks.py (v1.10.1), imported by
A1111 as the top-level module `networks`: `loaded_networks` (line 731), `store_weights_backup` and
`network_restore_weights_from_backup` (lines 376-408), and `network_apply_weights` (lines 411-485 and
542) for a Conv2d or Linear. With network.py `Network` (lines 91-98) and, for a plain Lora layer,
network_lora.py `calc_updown` (lines 71-86) with network.py `finalize_updown` (lines 196-216).

What the extension relies on:
- the weights are backed up on first use, restored from the backup when the wanted networks change,
  and each network's delta added in place;
- with an `fp16_weight` on the module (FP8 with "Cache FP16 weight for LoRA", sd_models.py lines
  506-511), each weight is rebuilt from `fp16_weight`, not from the backup;
- a delta that does not fit the weight (a Lora for a 4-channel first conv on a wider one) raises in
  the addition; the error is only logged at debug level and counted in `errors`, and the layer
  keeps its weight without that network.
"""
import logging

import torch

loaded_networks = []
errors = {}  # extra_network_lora.errors: network name -> number of layers that failed


class Network:
    def __init__(self, name, modules, unet_multiplier=1.0):
        self.name = name
        self.te_multiplier = 1.0
        self.unet_multiplier = unet_multiplier
        self.dyn_dim = None
        self.modules = modules  # network_layer_name -> LoraModule


class LoraModule:
    """A plain Lora layer: `up @ down`, reshaped to the layer's weight, times the multiplier."""

    def __init__(self, network, up, down):
        self.network, self.up, self.down = network, up, down

    def calc_updown(self, orig_weight):
        output_shape = [self.up.size(0), self.down.size(1), *self.down.shape[2:]]
        updown = (self.up.reshape(self.up.size(0), -1) @ self.down.reshape(self.down.size(0), -1)).reshape(output_shape)
        if orig_weight.size().numel() == updown.size().numel():
            updown = updown.reshape(orig_weight.shape)
        return updown.to(orig_weight.device) * self.network.unet_multiplier, None


def store_weights_backup(weight):
    return None if weight is None else weight.to("cpu", copy=True)


def network_restore_weights_from_backup(self):
    weights_backup = getattr(self, "network_weights_backup", None)
    bias_backup = getattr(self, "network_bias_backup", None)
    if weights_backup is None and bias_backup is None:
        return
    if weights_backup is not None:
        self.weight.copy_(weights_backup)
    if bias_backup is None:
        self.bias = None
    else:
        self.bias.copy_(bias_backup)


def network_apply_weights(self):
    network_layer_name = getattr(self, "network_layer_name", None)
    if network_layer_name is None:
        return
    current_names = getattr(self, "network_current_names", ())
    wanted_names = tuple((x.name, x.te_multiplier, x.unet_multiplier, x.dyn_dim) for x in loaded_networks)

    if getattr(self, "network_weights_backup", None) is None and wanted_names != ():
        if current_names != ():
            raise RuntimeError(f"{network_layer_name} - no backup weights found and current weights are not unchanged")
        self.network_weights_backup = store_weights_backup(self.weight)
    if getattr(self, "network_bias_backup", None) is None and wanted_names != ():
        bias_backup = store_weights_backup(self.bias)
        if bias_backup is not None and current_names != ():
            raise RuntimeError("no backup bias found and current bias are not unchanged")
        self.network_bias_backup = bias_backup

    if current_names != wanted_names:
        with torch.no_grad():
            network_restore_weights_from_backup(self)
        for net in loaded_networks:
            module = net.modules.get(network_layer_name, None)
            if module is None:
                continue
            try:
                with torch.no_grad():
                    if getattr(self, "fp16_weight", None) is None:
                        weight = self.weight
                    else:
                        weight = self.fp16_weight.clone().to(self.weight.device)
                    updown, _ = module.calc_updown(weight)
                    self.weight.copy_((weight.to(dtype=updown.dtype) + updown).to(dtype=self.weight.dtype))
            except RuntimeError as e:
                logging.debug(f"Network {net.name} layer {network_layer_name}: {e}")
                errors[net.name] = errors.get(net.name, 0) + 1
        self.network_current_names = wanted_names
