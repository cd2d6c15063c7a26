"""Where the latents are concatenated: the checkpoint UNet's first conv, while IC-Light is active.

`IcLightUnet` has the interface of A1111's `sd_unet.SdUnet` (`activate`, `deactivate`,
`forward(x, timesteps, context, ...)`); the adapter mixes it with the real base class. It owns the
merged weights and the activation. The latents are appended by a forward pre-hook on the first conv
(`input_blocks[0][0]`), registered only while active: every way of running the UNet passes there,
including a forward that another extension (ControlNet) sets on the UNet object itself, which A1111's
class-level router to the active SdUnet never sees.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

import torch
from torch.utils.hooks import RemovableHandle

from .device_moves import DeviceMoves
from .freed_memory import give_back_freed_memory
from ..errors import IcLightFault
from .key_table import FIRST_CONV_LDM
from .merge import merge_offsets
from .merged_cache import MergedWeightsCache, MergeKey, unet_fingerprint
from .offset_files import UNET_LATENT_CHANNELS, OffsetSource, validate_offsets
from .page_lock import PageLock
from .sd_version import require_sd1_unet
from .weight_swap import FIRST_CONV_MODULE, UnetBackup, parameter_slots, patch_unet, unpatch_unet

# "keep": the checkpoint's weights stay where they are and the cached merged weights live beside them
# (on the GPU: nothing moves per generation, one more UNet of VRAM). "park": the checkpoint's weights
# wait in RAM while IC-Light runs and the cache lives in RAM (VRAM as plain A1111, weights move).
Placement = Literal["keep", "park"]


@dataclass(frozen=True)
class CheckpointUnet:
    """The checkpoint's ldm `UNetModel` and ldm's own `UNetModel.forward`.

    A1111 replaces `UNetModel.forward` by a router to the active SdUnet, so calling the module
    itself from the SdUnet would come straight back here; the original forward is called instead.
    """

    module: torch.nn.Module
    forward: Callable[..., torch.Tensor]


class IcLightUnet(torch.nn.Module):
    """The checkpoint UNet with IC-Light weights, the concat latents appended to its input."""

    def __init__(
        self,
        checkpoint: CheckpointUnet,
        source: OffsetSource,
        placement: Placement = "keep",
        cache: MergedWeightsCache | None = None,
        page_lock: PageLock | None = None,
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.source = source
        self.placement = placement
        self.cache = cache
        self.page_lock = page_lock  # locks a parked copy's RAM for its transfers to the GPU
        self.backup: UnetBackup | None = None
        self.hook: RemovableHandle | None = None
        self.concat_channels: int | None = None
        self.concat: torch.Tensor | None = None
        # Hooks on the modules whose calls hand it their concat rows (row_alignment), removed on deactivate.
        self.feeders: dict[torch.nn.Module, tuple[RemovableHandle, RemovableHandle]] = {}
        self.moves = DeviceMoves()

    def activate(self) -> None:
        """Check the checkpoint, swap the merged weights in (from the cache, or read and merged) and
        hook the first conv. Refusals change nothing."""
        if self.backup is not None:
            return
        unet = self.checkpoint.module
        slots = parameter_slots(unet)
        self.moves = DeviceMoves()

        def merge() -> dict[str, torch.Tensor]:
            # Checked here only: a cached entry's key holds the names and shapes of the UNet it was made for.
            shapes = {name: module._parameters[leaf].shape for name, (module, leaf) in slots.items()}
            require_sd1_unet(shapes)
            offsets = self.source.load()
            validate_offsets(offsets, shapes)
            # Parked, the merge happens in RAM: VRAM never holds the merged and the checkpoint UNet at once;
            # its pages are locked for the transfers to the GPU.
            parked = self.placement == "park"
            return merge_offsets(unet, offsets, "cpu" if parked else None, moves=self.moves,
                                 page_lock=self.page_lock if parked else None)

        if self.cache is None:
            merged = merge()
        else:
            dtype = str(next(unet.parameters()).dtype)
            key = MergeKey(self.cache.fingerprint(unet, unet_fingerprint, slots), self.source.identity, dtype, self.placement)
            merged = self.cache.weights_for(key, unet, merge, self.placement == "park")
        self.concat_channels = merged[FIRST_CONV_LDM].shape[1] - UNET_LATENT_CHANNELS
        self.backup = patch_unet(unet, merged, self.placement == "park", self.moves, slots)
        self.hook = unet.get_submodule(FIRST_CONV_MODULE).register_forward_pre_hook(self.append_concat)

    def deactivate(self) -> None:
        """Unhook the first conv and the feeders, and give the checkpoint UNet back its own parameter objects.
        Should that raise (out of memory moving a parked weight back), calling it again finishes the restore."""
        for handles in self.feeders.values():
            for handle in handles:
                handle.remove()
        self.feeders.clear()
        if self.hook is not None:
            self.hook.remove()
            self.hook = None
        if self.backup is not None:
            unpatch_unet(self.checkpoint.module, self.backup, self.moves)
            self.backup = None
            if self.cache is None:
                give_back_freed_memory()  # the merged copy was this activation's alone

    @contextlib.contextmanager
    def concat_latents(self, latents: torch.Tensor) -> Iterator[None]:
        """Within the block, UNet calls get `latents` (one row per row of x) appended to x."""
        previous, self.concat = self.concat, latents
        try:
            yield
        finally:
            self.concat = previous

    def append_concat(self, conv: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Forward pre-hook of the first conv: x (4 channels) -> x with the concat latents appended."""
        x = args[0]
        if x.shape[1] != UNET_LATENT_CHANNELS:
            return None
        latents = self.concat
        if latents is None:
            raise IcLightFault(
                f"The IC-Light UNet ({self.source.name}) was called without foreground latents. "
                "IC-Light runs from its own panel in txt2img/img2img: enable it there."
            )
        expected = (x.shape[0], self.concat_channels, *x.shape[2:])
        if tuple(latents.shape) != expected:
            raise IcLightFault(
                f"IC-Light concat latents have shape {tuple(latents.shape)} but this UNet call needs {expected}."
            )
        return (torch.cat([x, latents.to(x)], dim=1), *args[1:])

    def forward(self, x: torch.Tensor, timesteps: Any = None, context: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.backup is None:
            raise IcLightFault("The IC-Light UNet was called before it was activated.")
        return self.checkpoint.forward(self.checkpoint.module, x, timesteps, context, *args, **kwargs)
