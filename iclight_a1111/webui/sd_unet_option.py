"""IC-Light as an A1111 SdUnet: the option for one IC-Light file and the UNet it creates."""
from __future__ import annotations

import sys
from typing import Any

import torch
from modules import devices, sd_hijack, sd_unet

from ..errors import IcLightError, RetryLater
from ..unet.concat_unet import CheckpointUnet, IcLightUnet
from ..unet.lora_bookkeeping import networks_on
from ..unet.model_files import ModelFile
from ..unet.offset_files import file_source
from ..unet.page_lock import page_lock_for
from .merged_weights import MERGED_WEIGHTS, cache_enabled, model_in_use, placement, release_merged_weights
from .model_folders import file_hash

UNET_LABEL_PREFIX = "IC-Light: "


class IcLightSdUnet(IcLightUnet, sd_unet.SdUnet):
    """`IcLightUnet` as an A1111 SdUnet: current in `sd_unet` while a generation uses IC-Light."""

    def append_concat(self, conv: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        refuse_lora_on_first_conv(conv)
        return super().append_concat(conv, args)

    def deactivate(self, keep_merged_weights: bool = False) -> None:
        """Off, the checkpoint's own weights back. A1111 calls this (from `apply_unet("None")`) only
        before it loads other weights into the model (a refiner, a checkpoint switch): the merged copy
        is released at once then, so it never sits in memory beside the weights being loaded.

        A restore that fails (out of memory moving a weight back) is retried once with the merged copies
        released; failing again it raises, and the rest of the restore stays to do (`restore_pending`)."""
        try:
            super().deactivate()
        except Exception:
            release_merged_weights()
            try:
                super().deactivate()
            except Exception as e:
                raise RetryLater(
                    f"IC-Light could not give the checkpoint its own weights back ({e}). Until it can, this checkpoint "
                    "is not used: free GPU memory (close other programs using it) and generate again, which retries; "
                    "if it keeps failing, restart the webui."
                ) from e
        if not keep_merged_weights:
            release_merged_weights()

    @property
    def restore_pending(self) -> bool:
        """Off, but not all of the checkpoint's own weights are back where they were."""
        return self.hook is None and self.backup is not None

    def is_active_for(self, model: ModelFile, unet: torch.nn.Module) -> bool:
        """Whether this is `model`'s IC-Light, active on `unet`."""
        return self.hook is not None and self.option.model == model and self.checkpoint.module is unet

    def forward(self, x: torch.Tensor, timesteps: Any = None, context: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        in_use = model_in_use()
        if self.restore_pending:
            deactivate_current()  # raises while the checkpoint cannot be restored: never run half merged
            return in_use(x, timesteps, context, *args, **kwargs)
        if in_use is not self.checkpoint.module:
            # A1111 switched to an already-loaded checkpoint (refiner, hires checkpoint, sd_checkpoints_limit
            # > 1) without `apply_unet("None")`: IC-Light goes off its model and the model in use runs as it is.
            deactivate_current()
            release_merged_weights()
            return in_use(x, timesteps, context, *args, **kwargs)
        return super().forward(x, timesteps, context, *args, **kwargs)


def loaded_lora_networks() -> list[Any]:
    """The networks the built-in Lora extension applies to this batch; A1111 imports the extension's
    code as the top-level module `networks`. Empty when that extension is off."""
    return list(getattr(sys.modules.get("networks"), "loaded_networks", None) or ())


def refuse_lora_on_first_conv(conv: torch.nn.Module) -> None:
    """Lora cannot add a layer made for the 4-channel first conv to the widened one: it only logs
    that at debug level and runs without it. Refuse instead, naming the Lora and the fix."""
    names = networks_on(conv, loaded_lora_networks())
    if names:
        prompts = ", ".join(f"<lora:{name}:...>" for name in names)
        raise IcLightError(
            f"Lora {', '.join(repr(n) for n in names)} changes the UNet's first conv (input_blocks.0.0, conv_in), "
            f"which IC-Light widens to {conv.in_channels} input channels; the Lora extension cannot apply it there and would "
            f"silently leave that layer out. Remove {prompts} from the prompt, or use a version of the Lora without "
            "that layer, to use it with IC-Light."
        )


class IcLightUnetOption(sd_unet.SdUnetOption):
    """One IC-Light file as an SdUnet option. Not listed in Settings > SD Unet: IC-Light is switched
    on per generation by its panel, without `sd_unet.apply_unet`'s device round trip."""

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.label = unet_label(model)
        self.model_name = None

    def create_unet(self) -> IcLightSdUnet:
        unet = model_in_use()
        checkpoint = CheckpointUnet(unet, sd_hijack.ldm_original_forward)
        source = file_source(self.model.path, file_hash(self.model))
        cache = MERGED_WEIGHTS if cache_enabled() else None
        return IcLightSdUnet(checkpoint, source, placement=placement(unet), cache=cache,
                             page_lock=page_lock_for(devices.device))


def unet_label(model: ModelFile) -> str:
    return UNET_LABEL_PREFIX + model.path.stem


def deactivate_current() -> None:
    """IC-Light off, if it is the current SdUnet; its merged copy stays cached for the next generation.
    When the checkpoint's weights cannot be restored it stays current, so that every use of the UNet
    (`forward`) and every generation (`generation.sampling.start`) retries the restore or is refused."""
    unet = sd_unet.current_unet
    if isinstance(unet, IcLightSdUnet):
        unet.deactivate(keep_merged_weights=True)
        sd_unet.current_unet_option, sd_unet.current_unet = None, None
