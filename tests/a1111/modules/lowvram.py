"""Mirrors modules/lowvram.py (v1.10.1) lines 34-172: `setup_for_low_vram` for the UNet, and `module_in_gpu`.

`--medvram`: one forward pre-hook on `sd_model.model` sends the whole UNet to the device.
`--lowvram`: the UNet's `time_embed`, `input_blocks`, `middle_block` and `output_blocks` stay in RAM
and each gets a pre-hook that sends it to the device (and the previous one back to RAM); everything
else of `sd_model.model` (the UNet's `out` among it) is moved to the device once and never hooked.
"""
import torch

from modules import devices

module_in_gpu = None
cpu = torch.device("cpu")


def send_me_to_gpu(module, _):
    global module_in_gpu
    if module_in_gpu == module:
        return
    if module_in_gpu is not None:
        module_in_gpu.to(cpu)
    module.to(devices.device)
    module_in_gpu = module


def setup_for_low_vram(sd_model, use_medvram):
    sd_model.lowvram = True
    if use_medvram:
        sd_model.model.register_forward_pre_hook(send_me_to_gpu)
        return
    diff_model = sd_model.model.diffusion_model
    stored = diff_model.input_blocks, diff_model.middle_block, diff_model.output_blocks, diff_model.time_embed
    diff_model.input_blocks, diff_model.middle_block, diff_model.output_blocks, diff_model.time_embed = None, None, None, None
    sd_model.model.to(devices.device)
    diff_model.input_blocks, diff_model.middle_block, diff_model.output_blocks, diff_model.time_embed = stored
    diff_model.time_embed.register_forward_pre_hook(send_me_to_gpu)
    for block in diff_model.input_blocks:
        block.register_forward_pre_hook(send_me_to_gpu)
    diff_model.middle_block.register_forward_pre_hook(send_me_to_gpu)
    for block in diff_model.output_blocks:
        block.register_forward_pre_hook(send_me_to_gpu)
