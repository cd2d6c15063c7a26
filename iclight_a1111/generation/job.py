"""What one IC-Light generation carries: its inputs, their latents per pass, its results, and what it needs from A1111."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from ..images.background_fill import background_without_subject
from ..images.light_maps import fbc_background
from ..images.resize_modes import REFERENCE, Layout
from ..images.vae_encoding import composite_on_grey
from ..unet.model_files import ModelFile

OVERRIDES_ATTR = "iclight_overrides"  # values set by X/Y/Z plot axes on `p`
JOB_ATTR = "iclight_job"
IMG2IMG_PICTURE = "The img2img picture"  # how messages name the picture A1111 gives (not 'foreground')


class Host(Protocol):
    """What a generation needs from the webui (`webui.host.A1111Host` on A1111, `webui.forge_host.ForgeHost` on Forge)."""

    def find_model(self, name: str) -> ModelFile: ...
    def short_hash(self, model: ModelFile) -> str: ...
    def check_generation(self, p: Any) -> None: ...
    def activate(self, model: ModelFile) -> None: ...
    def deactivate(self) -> None: ...
    def forget_other_models(self) -> None: ...
    def release_merged_weights(self) -> None: ...
    def hires_checkpoint(self, p: Any) -> tuple[str, str | None] | None: ...
    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor: ...
    def route(self, p: Any, latents: torch.Tensor) -> None: ...
    def predict_alphas(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def save_image(self, p: Any, image: Image.Image, index: int, infotext: str, suffix: str) -> None: ...
    def image_format(self) -> str: ...
    def picture_background(self) -> str: ...
    def picture_not_encoded(self) -> ContextManager[None]: ...


@dataclass
class ResultRecord:
    """One real result of the generation, as sampled and as IC-Light made it."""

    index: int  # in the generation's order (batch count x batch size): its seed and subject
    raw: Image.Image
    final: Image.Image


@dataclass
class IcLightJob:
    """A generation's IC-Light inputs, and their latents per latent size (first pass, hires pass)."""

    values: dict[str, Any]
    model: ModelFile
    inputs: list[np.ndarray]  # the subjects' RGB as given, one per image or one for all
    alphas: list[np.ndarray | None]  # 0..1: the subject's own alpha, or the background remover's
    layout: Layout = REFERENCE  # how images are fitted to the output: img2img's resize mode, or the reference's crop
    pictures: list[np.ndarray] = field(default_factory=list)  # what the user gave, as A1111 sees it (RGB)
    light_maps: list[np.ndarray] = field(default_factory=list)  # img2img fc: one, or one per subject
    background: np.ndarray | None = None
    latents: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # concat latents per latent size
    light_latents: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # the light maps' per size
    picture_latent: torch.Tensor | None = None  # img2img with a mask: A1111's latent of the user's picture
    hires_checkpoint: tuple[str, str | None] | None = None  # (title, family) of another hires checkpoint
    results: list[ResultRecord] = field(default_factory=list)
    image_format: str = "png"  # A1111's format for saved and returned images
    subject_field: str = "foreground"  # the field the subjects came from, as messages name it
    owner: Callable[[], Any] | None = None  # weak reference to the `p` the job was made for
    under_way: bool = True  # from `process` until the generation's `postprocess` or `p.close`

    @property
    def subjects(self) -> list[np.ndarray]:
        """The subjects as the model sees them: composited over grey by their alpha."""
        return [i if a is None else composite_on_grey(i, a) for i, a in zip(self.inputs, self.alphas)]

    def check_fits(self, width: int, height: int) -> None:
        """Refuse, naming it, an input whose fitting to a width x height output would be unbounded work."""
        pictures = [i for i in self.pictures if not any(i is j for j in self.inputs)]  # txt2img: the inputs
        named = [(i, self.subject_field) for i in self.inputs] + [(i, IMG2IMG_PICTURE) for i in pictures]
        if self.background is not None:
            named.append((self.background, "background"))
        for image, name in named:
            self.layout.check_fit((image.shape[1], image.shape[0]), width, height, name)

    def pass_latents(self, height: int, width: int, encode: Callable[[list[np.ndarray]], torch.Tensor],
                     light: bool = False) -> tuple[torch.Tensor | None, torch.Tensor]:
        """For a pass at this latent size: the light maps' latents (with `light`; else None) and the
        concat latents, foreground then background, each encoded once per generation and size.

        The light maps, the subjects and the background each go through the VAE in a call of their
        own: one call for all would change the latents in their last bits (a batched convolution
        rounds differently) and cost as much."""
        size = (height, width)
        w, h = width * 8, height * 8
        if light and size not in self.light_latents:
            self.light_latents[size] = encode([self.layout.fit(m, w, h) for m in self.light_maps])
        if size not in self.latents:
            self.check_fits(w, h)
            parts = [encode([self.layout.fit(s, w, h, self.subject_field) for s in self.subjects])]
            if self.model.variant == "fbc":
                background = encode(self.background_images(w, h))
                parts.append(background.expand(parts[0].shape[0], -1, -1, -1))
            self.latents[size] = torch.cat(parts, dim=1)
        return self.light_latents[size] if light else None, self.latents[size]

    def background_images(self, width: int, height: int) -> list[np.ndarray]:
        """The fbc background condition: one for all subjects, or (from the pictures) one per subject."""
        source = self.values["background_source"]
        if source.startswith("Upload"):
            return [self.layout.fit(self.background, width, height)]
        if source == "Original picture":
            return [background_without_subject(self.layout.fit(self.pictures[i % len(self.pictures)], width, height),
                                               self.layout.fit_alpha(alpha, width, height))
                    for i, alpha in enumerate(self.alphas)]
        return [fbc_background(source, width, height)]
