"""IC-Light weight files: read, rename to ldm keys, tell the variant, check against a UNet.

The released files hold offsets (`merged = base + offset`), not weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import IcLightError
from .key_table import FIRST_CONV_LDM, to_ldm_keys

# Input channels of the first conv -> variant. fc and fcon share a shape; only their training differs.
VARIANTS = {8: "fc", 12: "fbc"}
UNET_LATENT_CHANNELS = 4


@dataclass(frozen=True)
class IcLightOffsets:
    """The offsets of one IC-Light file, keyed by ldm UNetModel parameter names."""

    name: str
    tensors: dict[str, torch.Tensor]
    layout: str

    @property
    def in_channels(self) -> int:
        return self.tensors[FIRST_CONV_LDM].shape[1]

    @property
    def variant(self) -> str:
        return VARIANTS[self.in_channels]

    @property
    def concat_channels(self) -> int:
        """Channels appended to the noisy latent: 4 (foreground) or 8 (foreground, background)."""
        return self.in_channels - UNET_LATENT_CHANNELS


@dataclass(frozen=True)
class OffsetSource:
    """An IC-Light file as the SdUnet sees it: read only when its merged weights are not cached."""

    name: str
    identity: str
    load: Callable[[], IcLightOffsets]


def file_source(path: str | Path, identity: str | None = None) -> OffsetSource:
    """`identity` is the file's content hash when known; by default its path, size and mtime."""
    path = Path(path)
    if identity is None:
        stat = path.stat()
        identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return OffsetSource(path.name, identity, lambda: load_offsets(path))


def memory_source(offsets: IcLightOffsets) -> OffsetSource:
    return OffsetSource(offsets.name, f"memory:{id(offsets)}", lambda: offsets)


def load_offsets(path: str | Path) -> IcLightOffsets:
    """Read an IC-Light `.safetensors` file (diffusers or ldm key layout) and detect its variant."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise IcLightError(
            f"'{path.name}' is not a .safetensors file. IC-Light models are only read from .safetensors: "
            "pickle files (.ckpt, .pt, .bin, .pth) can run arbitrary code when loaded. "
            "Download the .safetensors release (e.g. iclight_sd15_fc.safetensors) instead."
        )
    if not path.is_file():
        raise IcLightError(f"IC-Light model file not found: '{path}'.")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise IcLightError(
            f"'{path.name}' could not be read as a safetensors file ({e}). "
            "The file is corrupt or incompletely downloaded: download it again."
        ) from e
    return offsets_from_tensors(path.name, tensors)


def offsets_from_tensors(name: str, tensors: Mapping[str, torch.Tensor]) -> IcLightOffsets:
    """Build `IcLightOffsets` from an in-memory state dict (either key layout)."""
    ldm_tensors, layout = to_ldm_keys(tensors)
    first_conv = ldm_tensors[FIRST_CONV_LDM]
    if first_conv.ndim != 4 or first_conv.shape[1] not in VARIANTS:
        raise IcLightError(
            f"'{name}' has a first conv of shape {tuple(first_conv.shape)}; IC-Light models have 8 (fc, fcon) "
            "or 12 (fbc) input channels. This is not an IC-Light model."
        )
    return IcLightOffsets(name=name, tensors=ldm_tensors, layout=layout)


def expected_offset_shape(key: str, base_shape: torch.Size, in_channels: int) -> torch.Size:
    """Offsets have the base shape, except the first conv, widened to the model's input channels."""
    if key == FIRST_CONV_LDM:
        return torch.Size((base_shape[0], in_channels, *base_shape[2:]))
    return torch.Size(base_shape)


def validate_offsets(offsets: IcLightOffsets, unet_shapes: Mapping[str, torch.Size]) -> None:
    """Refuse, naming the keys, unless the offsets cover exactly the UNet's parameters with the right shapes."""
    missing = [k for k in unet_shapes if k not in offsets.tensors]
    extra = [k for k in offsets.tensors if k not in unet_shapes]
    misshaped = [
        f"{k} {tuple(offsets.tensors[k].shape)} (UNet needs {tuple(want)})"
        for k, shape in unet_shapes.items()
        if k in offsets.tensors
        and offsets.tensors[k].shape != (want := expected_offset_shape(k, shape, offsets.in_channels))
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", extra), ("wrong shapes", misshaped)):
        if keys:
            shown = "; ".join(keys[:5]) + (f"; and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise IcLightError(
            f"IC-Light model '{offsets.name}' does not fit this checkpoint's UNet ({' | '.join(problems)}). "
            "Use an unmodified IC-Light SD 1.5 release file with an SD 1.x checkpoint."
        )
