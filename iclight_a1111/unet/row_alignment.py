"""Keep the concat latents aligned with the rows A1111's CFGDenoiser sends to the UNet.

A1111 v1.10.1's CFGDenoiser builds the UNet batch from `image_cond` exactly as from `x`: each
image's row repeated once per AND sub-prompt, then the uncond rows; it then may drop the uncond
rows (NGMS, skip_early_cond), split the batch (`batch_cond_uncond` off) or call cond and uncond
separately (prompts of unequal length), and passes the matching slice of `image_cond` as
`c_concat` with every slice of `x`. SD 1.x models ignore `c_concat`, so carrying the IC-Light
latents as `image_cond` lets A1111's own code lay them out, whatever the layout; the inner model
call then hands its `c_concat` rows to the IC-Light UNet.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch
from torch.utils.hooks import RemovableHandle

from .concat_unet import IcLightUnet
from ..errors import IcLightFault

ROUTED_LATENTS = "iclight_latents"  # on the CFGDenoiser's forward wrapper: the latents it feeds
ROUTED_UNET = "iclight_unet"  # on the inner model's forward wrapper: the IC-Light UNet it feeds


def route_concat_latents(denoiser: torch.nn.Module, unet: IcLightUnet, latents: torch.Tensor) -> None:
    """Make `denoiser` (one sampling pass's CFGDenoiser) feed `latents` to `unet`, row by row.

    `latents` has one row per image of the batch (or a single row shared by all) and must have
    the latent size of the pass: a hires pass needs latents encoded at the hires size. Routing the
    same denoiser again (img2img keeps one sampler for every batch) replaces its latents; the
    wrappers are installed once.
    """
    if not hasattr(denoiser.forward, ROUTED_LATENTS):
        denoiser.forward = _with_image_cond(denoiser.forward)
    setattr(denoiser.forward, ROUTED_LATENTS, latents)
    inner_model = denoiser.inner_model
    forward = inner_model.forward
    if getattr(forward, ROUTED_UNET, None) is not unet:
        plain = forward.__wrapped__ if hasattr(forward, ROUTED_UNET) else forward
        inner_model.forward = _with_rows_of_x(plain, unet)
    _feed_from_c_concat(inner_model.inner_model.model, unet)


def _with_image_cond(forward: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(forward)

    @functools.wraps(forward)
    def forward_with_latents(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        x = bound.arguments["x"]
        bound.arguments["image_cond"] = batch_latents(getattr(forward_with_latents, ROUTED_LATENTS), x)
        return forward(*bound.args, **bound.kwargs)

    return forward_with_latents


def _with_rows_of_x(forward: Callable[..., Any], unet: IcLightUnet) -> Callable[..., Any]:
    @functools.wraps(forward)
    def forward_with_rows_of_x(x: torch.Tensor, *args: Any, cond: dict, **kwargs: Any) -> Any:
        if unet.backup is None:
            raise IcLightFault(
                "IC-Light was switched off during this generation (was the checkpoint reloaded by a refiner, a "
                "hires. fix checkpoint or another extension?): nothing is generated without relighting."
            )
        # When uncond rows are skipped in a single call, x loses its last rows but c_concat does not: its
        # first rows are still x's. Cut here, before anything below cuts x and c_concat into tiles.
        c_concat = cond.get("c_concat")
        if c_concat and c_concat[0].shape[0] > x.shape[0]:
            cond = {**cond, "c_concat": [c_concat[0][: x.shape[0]]]}
        return forward(x, *args, cond=cond, **kwargs)

    setattr(forward_with_rows_of_x, ROUTED_UNET, unet)
    return forward_with_rows_of_x


def _feed_from_c_concat(wrapper: torch.nn.Module, unet: IcLightUnet) -> None:
    """Each call of `wrapper` (ldm's DiffusionWrapper) runs the UNet with its own `c_concat` rows appended;
    the hooks go when the IC-Light UNet is deactivated."""
    if wrapper in unet.feeders:
        return
    open_blocks: list[Any] = []

    def take_rows(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs["x"]
        c_concat = kwargs.get("c_concat")
        # More rows than x only where a caller reuses a larger block of rows for a smaller call (Tiled
        # Diffusion's regions with batch_cond_uncond off): their first rows belong to x, as above.
        rows = c_concat[0][: x.shape[0]] if c_concat else None
        block = unet.concat_latents(rows)
        block.__enter__()
        open_blocks.append(block)

    def restore(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if open_blocks:
            open_blocks.pop().__exit__(None, None, None)

    unet.feeders[wrapper] = (wrapper.register_forward_pre_hook(take_rows, with_kwargs=True), after_every_call(wrapper, restore))


def after_every_call(module: torch.nn.Module, hook: Callable[..., None]) -> RemovableHandle:
    """`hook` after each call of `module`, also one that raises where torch can (2.1 and later). torch 2.0
    (A1111 installs upgraded from 1.6 keep 2.0.1) has no `always_call`: there a call that raises leaves its
    rows set until the next call sets its own, and every call still gets its own rows."""
    try:
        return module.register_forward_hook(hook, with_kwargs=True, always_call=True)
    except TypeError:
        return module.register_forward_hook(hook, with_kwargs=True)


def batch_latents(latents: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`latents` as one row per image of `x`, refusing a mismatched batch or latent size."""
    if tuple(latents.shape[2:]) != tuple(x.shape[2:]):
        h, w = latents.shape[2:]
        xh, xw = x.shape[2:]
        raise IcLightFault(
            f"IC-Light latents were encoded for a {w * 8}x{h * 8} image but this sampling pass works at "
            f"{xw * 8}x{xh * 8} (hires. fix?): the foreground and background must be encoded at that size."
        )
    if latents.shape[0] == 1:
        latents = latents.expand(x.shape[0], *latents.shape[1:])
    if latents.shape[0] != x.shape[0]:
        raise IcLightFault(f"IC-Light has latents for {latents.shape[0]} images but the batch has {x.shape[0]}.")
    return latents.to(x)
