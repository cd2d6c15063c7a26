"""IC-Light on Forge's UNet patcher: the offsets as Forge 'diff' patches, the concat latents as its concat condition.

Forge patches a UNet by cloning its `UnetPatcher` (backend/patcher/unet.py) and adding patches keyed by
the KModel's parameter names (`diffusion_model.` + ldm's); it merges them when it loads that clone
(backend/patcher/lora.py `LoraLoader.refresh`: each weight summed in float32, a 4-D diff larger than its
weight widening it with zeros first, so the first conv gets its 4 or 8 more input channels) and puts the
checkpoint's own weights back when it next loads a patcher without them. It decides whether to merge
again by the patches' `filename` alone: the name carries the file's identity (path, size, mtime, hash).
`extra_concat_condition` is appended to the UNet's input by `KModel.apply_model` for every row of cond
and uncond (backend/sampling/sampling_function.py), when its batch and size are the pass's.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import IcLightError, IcLightFault, ModelFileFault
from ..progress import tracked
from ..unet.offset_files import IcLightOffsets, OffsetSource, validate_offsets
from ..unet.sd_version import require_sd1_unet

KEY_PREFIX = "diffusion_model."  # the KModel's name of the UNet
PATCH_PREFIX = "iclight:"


@dataclass(frozen=True)
class ForgePatches:
    """One IC-Light file's offsets, in RAM, as `add_patches` takes them."""

    name: str  # what Forge knows the patches by: the file's identity
    patches: dict[str, tuple[torch.Tensor]]
    shapes: dict[str, tuple[int, ...]]  # ldm name -> offset shape
    concat_channels: int


def read_patches(source: OffsetSource) -> ForgePatches:
    """Every offset of the file read into RAM (Forge merges from them whenever it loads the UNet)."""
    offsets = source.load()
    patches = {KEY_PREFIX + name: (offsets.tensors[name],) for name in tracked(list(offsets.shapes), "IC-Light: reading the file")}
    return ForgePatches(PATCH_PREFIX + source.identity, patches, dict(offsets.shapes), offsets.concat_channels)


class PatchesInRam:
    """The patches of the files used last, so a repeated request reads no file: the least recently used
    go first when `limit` is reached or one more file would not leave RAM for a generation."""

    def __init__(self, limit: int, has_room: Callable[[int], bool]) -> None:
        self.entries: OrderedDict[str, ForgePatches] = OrderedDict()
        self.limit, self.has_room = limit, has_room

    def get(self, source: OffsetSource, nbytes: int) -> ForgePatches:
        """The file's patches, read unless kept; `nbytes`: the file's size."""
        if source.identity in self.entries:
            self.entries.move_to_end(source.identity)
            return self.entries[source.identity]
        while self.entries and (len(self.entries) >= self.limit or not self.has_room(nbytes)):
            self.entries.popitem(last=False)
        patches = read_patches(source)
        self.entries[source.identity] = patches
        return patches

    def clear(self) -> None:
        self.entries.clear()


def original_shapes(unet: Any) -> dict[str, tuple[int, ...]]:
    """The UNet's parameter shapes (ldm names) as the checkpoint has them: where Forge has merged patches into
    a weight (IC-Light's widened first conv, until its next load), the shape of the weight it keeps aside."""
    model = unet.model
    kept = getattr(getattr(model, "lora_loader", None), "backup", None) or {}
    return {name: tuple(kept[KEY_PREFIX + name].shape if KEY_PREFIX + name in kept else param.shape)
            for name, param in model.diffusion_model.named_parameters()}


def check_unet(unet: Any, patches: ForgePatches | None = None) -> None:
    """Refuse a UNet that is not SD 1.x, or stored quantized, and (given) patches that do not fit it."""
    quantized = [name for name, param in unet.model.diffusion_model.named_parameters()
                 if getattr(param, "bnb_quantized", False) or getattr(param, "gguf_cls", None) is not None]
    if quantized:
        # Forge merges into such weights by quantizing the sum into the same storage (backend/patcher/lora.py
        # 433-439): the first conv cannot grow its input channels there.
        raise IcLightError("This checkpoint's UNet is stored quantized (NF4, FP4 or GGUF): IC-Light cannot widen its first "
                           "conv. Use an fp16 or fp32 SD 1.5 checkpoint (FP8 storage works).")
    shapes = original_shapes(unet)
    require_sd1_unet(shapes)
    if patches is not None:
        offsets = IcLightOffsets(patches.name, {}, patches.shapes, "ldm")  # what the check reads: names and shapes
        validate_offsets(offsets, {k: torch.Size(v) for k, v in shapes.items()})


def carries_patches(unet: Any) -> bool:
    """Whether Forge's `unet` (a `UnetPatcher`) holds IC-Light patches."""
    return any(str(identifier[0]).startswith(PATCH_PREFIX) for identifier in getattr(unet, "lora_patches", {}))


def relighting_unet(unet: Any, patches: ForgePatches, latents: torch.Tensor, batch_size: int) -> Any:
    """A clone of Forge's `unet` (a `UnetPatcher`) with the IC-Light offsets as patches and `latents` (one row,
    or one per image) as the concat condition of a batch of `batch_size` images."""
    if latents.shape[0] == 1:
        latents = latents.expand(batch_size, -1, -1, -1)
    if latents.shape[0] != batch_size or latents.shape[1] != patches.concat_channels:
        raise IcLightFault(f"IC-Light has latents of shape {tuple(latents.shape)} for a batch of {batch_size} images.")
    clone = unet.clone()
    taken = clone.add_patches(filename=patches.name, patches=patches.patches)
    if len(taken) != len(patches.patches):
        missing = sorted(set(patches.patches) - set(taken))[:3]
        raise ModelFileFault(f"Forge's UNet took {len(taken)} of the {len(patches.patches)} IC-Light weights "
                             f"(not {', '.join(missing)}): this checkpoint's UNet is not the SD 1.x UNet IC-Light patches.")
    clone.extra_concat_condition = latents.float().contiguous()
    return clone
