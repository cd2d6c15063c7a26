"""Other checkpoints a generation meets (hires checkpoint, refiner): which, and of what family."""
from __future__ import annotations

from typing import Any

from modules import sd_models, shared

from ..unet.checkpoint_family import family_from_file, family_of_model


def other_checkpoint(name: str | None) -> Any:
    """The `CheckpointInfo` of a hires checkpoint or refiner setting when it names another checkpoint
    than the one in use; None for none, the same one, or one A1111 does not know (`p.init` refuses it)."""
    if name in (None, "", "None", "none", "Use same checkpoint"):
        return None
    info = sd_models.get_closet_checkpoint_match(name)
    if info is None or info.filename == shared.sd_model.sd_checkpoint_info.filename:
        return None
    return info


def checkpoint_family(info: Any) -> str | None:
    """The family of a checkpoint: from the loaded model when A1111 holds it, else from its file's header.
    (Forge holds one model, the one in use, and keeps no `loaded_sd_models`.)"""
    for model in getattr(sd_models.model_data, "loaded_sd_models", ()):
        if model.sd_checkpoint_info.filename == info.filename:
            return family_of_model(model)
    return family_from_file(info.filename)
