"""Where the latents are concatenated: the UNet A1111 calls while IC-Light is active.

`IcLightUnet` has the interface of A1111's `sd_unet.SdUnet` (`activate`, `deactivate`,
`forward(x, timesteps, context, ...)`); the adapter mixes it with the real base class.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from .errors import IcLightError
from .key_table import FIRST_CONV_LDM
from .merge import merge_offsets
from .merged_cache import MergedWeightsCache, MergeKey, unet_fingerprint
from .offset_files import UNET_LATENT_CHANNELS, OffsetSource, validate_offsets
from .sd_version import require_sd1_unet
from .weight_swap import UnetBackup, patch_unet, unpatch_unet


@dataclass(frozen=True)
class CheckpointUnet:
    """The checkpoint's ldm `UNetModel` and ldm's own `UNetModel.forward`.

    A1111 replaces `UNetModel.forward` by a router to the active SdUnet, so calling the module
    itself from the SdUnet would come straight back here; the original forward is called instead.
    """

    module: torch.nn.Module
    forward: Callable[..., torch.Tensor]


class IcLightUnet(torch.nn.Module):
    """Runs the checkpoint UNet with IC-Light weights, the concat latents appended to its input."""

    def __init__(
        self,
        checkpoint: CheckpointUnet,
        source: OffsetSource,
        device: torch.device | str | None = None,
        cache: MergedWeightsCache | None = None,
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.source = source
        self.weights_device = device
        self.cache = cache
        self.backup: UnetBackup | None = None
        self.concat_channels: int | None = None
        self.concat: torch.Tensor | None = None

    def activate(self) -> None:
        """Check the checkpoint, then swap the merged weights in (from the cache, or read and merged).
        Refusals change nothing."""
        if self.backup is not None:
            return
        unet = self.checkpoint.module
        shapes = {name: p.shape for name, p in unet.named_parameters()}
        require_sd1_unet(shapes)
        base = next(unet.parameters())
        device = torch.device(self.weights_device) if self.weights_device is not None else base.device

        def merge() -> dict[str, torch.Tensor]:
            offsets = self.source.load()
            validate_offsets(offsets, shapes)
            return merge_offsets(unet, offsets, device)

        if self.cache is None:
            merged = merge()
        else:
            key = MergeKey(unet_fingerprint(unet), self.source.identity, str(base.dtype), str(device))
            merged = self.cache.weights_for(key, merge, device)
        self.concat_channels = merged[FIRST_CONV_LDM].shape[1] - UNET_LATENT_CHANNELS
        self.backup = patch_unet(unet, merged)

    def deactivate(self) -> None:
        """Give the checkpoint UNet back its own parameter objects."""
        if self.backup is not None:
            unpatch_unet(self.checkpoint.module, self.backup)
            self.backup = None

    @contextlib.contextmanager
    def concat_latents(self, latents: torch.Tensor) -> Iterator[None]:
        """Within the block, UNet calls get `latents` (one row per row of x) appended to x."""
        previous, self.concat = self.concat, latents
        try:
            yield
        finally:
            self.concat = previous

    def forward(self, x: torch.Tensor, timesteps: Any = None, context: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.backup is None:
            raise IcLightError("The IC-Light UNet was called before it was activated.")
        latents = self.concat
        if latents is None:
            raise IcLightError(
                f"The IC-Light UNet ({self.source.name}) was called without foreground latents. "
                "IC-Light runs from its own panel in txt2img/img2img: enable it there, and leave "
                "Settings > SD Unet on Automatic or None."
            )
        expected = (x.shape[0], self.concat_channels, *x.shape[2:])
        if tuple(latents.shape) != expected:
            raise IcLightError(
                f"IC-Light concat latents have shape {tuple(latents.shape)} but this UNet call needs {expected}."
            )
        x = torch.cat([x, latents.to(x)], dim=1)
        return self.checkpoint.forward(self.checkpoint.module, x, timesteps, context, *args, **kwargs)
