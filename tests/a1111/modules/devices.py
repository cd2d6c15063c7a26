"""Mirrors modules/devices.py (v1.10.1): the device and dtype globals, `torch_gc`."""
import torch

cpu = torch.device("cpu")
device = torch.device("cpu")
dtype = torch.float32
dtype_vae = torch.float32
dtype_unet = torch.float32


def torch_gc():
    pass
