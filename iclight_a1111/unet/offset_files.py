"""IC-Light weight files: read, rename to ldm keys, tell the variant, check against a UNet.

The released files hold offsets (`merged = base + offset`), not weights. A file is read one tensor
at a time while merging, so reading it never holds a second copy of the UNet in RAM.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open

from ..errors import ModelFileFault
from .key_table import FIRST_CONV_LDM, to_ldm_keys

# Input channels of the first conv -> variant. fc and fcon share a shape; only their training differs.
VARIANTS = {8: "fc", 12: "fbc"}
UNET_LATENT_CHANNELS = 4
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# A torch.save file is a zip archive (new format) or a bare pickle stream (protocol 2+ starts with 0x80).
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


class FileTensors(Mapping[str, torch.Tensor]):
    """The tensors of a safetensors file under ldm names, each read from disk when asked for.

    safetensors maps the whole file, and every page read stays in the process's resident memory while
    it is mapped; the file is mapped anew every `REMAP_BYTES`, so reading it never holds more.
    """

    REMAP_BYTES = 256 * 2**20

    def __init__(self, path: Path, file_keys: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.path = path
        self.file_keys = dict(file_keys)  # ldm name -> name in the file
        self.shapes = dict(shapes)
        self.handle: Any = None
        self.mapped_bytes_read = 0

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            if self.handle is None or self.mapped_bytes_read > self.REMAP_BYTES:
                self.handle, self.mapped_bytes_read = safe_open(str(self.path), framework="pt", device="cpu"), 0
            tensor = self.handle.get_tensor(self.file_keys[name])
        except (SafetensorError, OSError) as e:
            raise ModelFileFault(f"'{self.path.name}' could not be read ({e}): download it again.") from e
        self.mapped_bytes_read += tensor.numel() * tensor.element_size()
        return tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.file_keys)

    def __len__(self) -> int:
        return len(self.file_keys)


@dataclass(frozen=True)
class IcLightOffsets:
    """The offsets of one IC-Light file, keyed by ldm UNetModel parameter names."""

    name: str
    tensors: Mapping[str, torch.Tensor]
    shapes: Mapping[str, tuple[int, ...]]
    layout: str

    @property
    def in_channels(self) -> int:
        return self.shapes[FIRST_CONV_LDM][1]

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


def file_identity(path: Path) -> str:
    """What identifies a file's content when its hash is unknown: path, size and modification time."""
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def file_source(path: str | Path, content_hash: str | None = None) -> OffsetSource:
    """Identified by the file's path, size and mtime, and its content hash when known: two files
    never share an identity, nor a file and the one that replaced it."""
    path = Path(path)
    identity = file_identity(path) + (f":{content_hash}" if content_hash else "")
    return OffsetSource(path.name, identity, lambda: load_offsets(path))


def require_safetensors(path: Path) -> None:
    """Refuse pickle files, by name or by content, with the reason."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    if path.suffix.lower() in PICKLE_SUFFIXES or head.startswith(PICKLE_MAGIC):
        raise ModelFileFault(
            f"'{path.name}' is a pickle file (.ckpt, .pt, .pth, .bin), not safetensors. IC-Light models are only "
            "read from .safetensors files: pickle files can run arbitrary code when loaded. "
            "Download the .safetensors release (e.g. iclight_sd15_fc.safetensors) instead."
        )
    if path.suffix.lower() != ".safetensors":
        raise ModelFileFault(f"'{path.name}' is not a .safetensors file; IC-Light models are .safetensors files.")


def header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without reading the tensors."""
    require_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ModelFileFault(
            f"'{path.name}' could not be read as a safetensors file ({e}). "
            "The file is corrupt or incompletely downloaded: download it again."
        ) from e


def load_offsets(path: str | Path) -> IcLightOffsets:
    """An IC-Light `.safetensors` file (diffusers or ldm key layout), its variant detected; the
    tensors are read when merged."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileFault(f"IC-Light model file not found: '{path}'.")
    shapes = header_shapes(path)
    file_keys, layout = to_ldm_keys({k: k for k in shapes})
    ldm_shapes = {ldm: shapes[key] for ldm, key in file_keys.items()}
    check_first_conv(path.name, ldm_shapes[FIRST_CONV_LDM])
    return IcLightOffsets(path.name, FileTensors(path, file_keys, ldm_shapes), ldm_shapes, layout)


def offsets_from_tensors(name: str, tensors: Mapping[str, torch.Tensor]) -> IcLightOffsets:
    """`IcLightOffsets` from an in-memory state dict (either key layout)."""
    ldm_tensors, layout = to_ldm_keys(tensors)
    shapes = {k: tuple(v.shape) for k, v in ldm_tensors.items()}
    check_first_conv(name, shapes[FIRST_CONV_LDM])
    return IcLightOffsets(name, ldm_tensors, shapes, layout)


def check_first_conv(name: str, shape: tuple[Any, ...]) -> None:
    if len(shape) != 4 or shape[1] not in VARIANTS:
        raise ModelFileFault(
            f"'{name}' has a first conv of shape {tuple(shape)}; IC-Light models have 8 (fc, fcon) "
            "or 12 (fbc) input channels. This is not an IC-Light model."
        )


def expected_offset_shape(key: str, base_shape: torch.Size, in_channels: int) -> torch.Size:
    """Offsets have the base shape, except the first conv, widened to the model's input channels."""
    if key == FIRST_CONV_LDM:
        return torch.Size((base_shape[0], in_channels, *base_shape[2:]))
    return torch.Size(base_shape)


def validate_offsets(offsets: IcLightOffsets, unet_shapes: Mapping[str, torch.Size]) -> None:
    """Refuse, naming the keys, unless the offsets cover exactly the UNet's parameters with the right shapes."""
    shapes = offsets.shapes
    missing = [k for k in unet_shapes if k not in shapes]
    extra = [k for k in shapes if k not in unet_shapes]
    misshaped = [
        f"{k} {tuple(shapes[k])} (UNet needs {tuple(want)})"
        for k, shape in unet_shapes.items()
        if k in shapes and torch.Size(shapes[k]) != (want := expected_offset_shape(k, shape, offsets.in_channels))
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", extra), ("wrong shapes", misshaped)):
        if keys:
            shown = "; ".join(keys[:5]) + (f"; and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise ModelFileFault(
            f"IC-Light model '{offsets.name}' does not fit this checkpoint's UNet ({' | '.join(problems)}). "
            "Use an unmodified IC-Light SD 1.5 release file with an SD 1.x checkpoint."
        )
