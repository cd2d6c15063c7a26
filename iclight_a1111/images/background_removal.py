"""Background removal with BRIA RMBG-1.4 (an IS-Net), in torch, loading the released weights as they are.

The module names and shapes follow the released `model.safetensors` (so it loads with strict=True):
`conv_in`, encoder stages `stage1`..`stage6`, decoder stages `stage5d`..`stage1d`, side convs
`side1`..`side6`. Each stage is a residual U-block: `rebnconvin`, then `rebnconv1`..`rebnconvN` down
(max-pooled between levels, or dilated 1, 2, 4, 8 in the "F" stages), then `rebnconvN-1d`..`rebnconv1d`
up, each a conv `conv_s1` + BatchNorm `bn_s1` + ReLU. The alpha is the first side output.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from ..errors import IcLightError, ModelFileFault
from .image_decoding import label
from .vae_encoding import vae_input

RMBG_FIRST_KEY = "stage1.rebnconvin.conv_s1.weight"
FEED_AREA_SIDE = 16  # feed sides are 64 * round(side * sqrt(16^2 / area)): about 1024x1024 pixels
# A side that rounds up to 64 pixels (an image far from square) leaves the other as long as it was: the
# feed is bounded at twice its usual area, which takes images up to about 1:1000.
MAX_FEED_PIXELS = 2 * (64 * FEED_AREA_SIDE) ** 2


class ConvBnRelu(torch.nn.Module):
    """conv_s1 (3x3, dilated) + bn_s1 + ReLU, named as in the released weights."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv_s1 = torch.nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.bn_s1 = torch.nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn_s1(self.conv_s1(x)))


def resize_like(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=target.shape[2:], mode="bilinear")


class ResidualUBlock(torch.nn.Module):
    """A U-Net of `height` levels inside a residual block (RSU-7..RSU-4; `pooled=False`: RSU-4F)."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, pooled: bool = True) -> None:
        super().__init__()
        self.height, self.pooled = height, pooled

        def dilation(level: int) -> int:
            return 1 if pooled else 2 ** (level - 1)

        self.rebnconvin = ConvBnRelu(in_ch, out_ch)
        for level in range(1, height):
            setattr(self, f"rebnconv{level}", ConvBnRelu(out_ch if level == 1 else mid_ch, mid_ch, dilation(level)))
        setattr(self, f"rebnconv{height}", ConvBnRelu(mid_ch, mid_ch, 2 if pooled else 2 ** (height - 1)))
        for level in range(height - 1, 0, -1):
            setattr(self, f"rebnconv{level}d", ConvBnRelu(mid_ch * 2, out_ch if level == 1 else mid_ch, dilation(level)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = self.rebnconvin(x)
        skips, h = [], top
        for level in range(1, self.height):
            h = getattr(self, f"rebnconv{level}")(h)
            skips.append(h)
            if self.pooled and level < self.height - 1:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
        d = getattr(self, f"rebnconv{self.height}")(h)
        for level in range(self.height - 1, 0, -1):
            d = getattr(self, f"rebnconv{level}d")(torch.cat((d, skips[level - 1]), 1))
            if self.pooled and level > 1:
                d = resize_like(d, skips[level - 2])
        return d + top


class RmbgNet(torch.nn.Module):
    """RMBG-1.4's IS-Net. `forward` returns the alpha (N x 1 x H x W, 0..1) of a `/127 - 1` image batch."""

    ENCODER = ((7, 64, 32, 64, True), (6, 64, 32, 128, True), (5, 128, 64, 256, True), (4, 256, 128, 512, True),
               (4, 512, 256, 512, False), (4, 512, 256, 512, False))
    DECODER = {"stage5d": (4, 1024, 256, 512, False), "stage4d": (4, 1024, 128, 256, True),
               "stage3d": (5, 512, 64, 128, True), "stage2d": (6, 256, 32, 64, True), "stage1d": (7, 128, 16, 64, True)}
    SIDES = (64, 64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.conv_in = torch.nn.Conv2d(3, 64, 3, stride=2, padding=1)
        for i, spec in enumerate(self.ENCODER, start=1):
            setattr(self, f"stage{i}", ResidualUBlock(*spec))
        for name, spec in self.DECODER.items():
            setattr(self, name, ResidualUBlock(*spec))
        # Only side1 gives the alpha; the others are kept so the released weights load strictly.
        for i, channels in enumerate(self.SIDES, start=1):
            setattr(self, f"side{i}", torch.nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded, h = [], self.conv_in(x)
        for i in range(1, 7):
            h = getattr(self, f"stage{i}")(h)
            encoded.append(h)
            if i < 6:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
        d = encoded[5]
        for i in range(5, 0, -1):
            d = getattr(self, f"stage{i}d")(torch.cat((resize_like(d, encoded[i - 1]), encoded[i - 1]), 1))
        return torch.sigmoid(resize_like(self.side1(d), x))


def is_rmbg_file(keys: object) -> bool:
    return RMBG_FIRST_KEY in keys


def load_rmbg(path: str | Path) -> RmbgNet:
    """The net with the weights of an RMBG-1.4 `model.safetensors`, in eval mode."""
    path = Path(path)
    try:
        state = load_file(str(path))
    except Exception as e:
        raise ModelFileFault(f"'{path.name}' could not be read as a safetensors file ({e}); download it again.") from e
    net = RmbgNet()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileFault(f"'{path.name}' is not the RMBG-1.4 background removal model: {str(e)[:300]}") from e
    return net.eval().requires_grad_(False)


def feed_size(width: int, height: int) -> tuple[int, int]:
    """The size the net sees: about 1024x1024 pixels, aspect kept, each side a multiple of 64."""
    scale = (FEED_AREA_SIDE ** 2 / (width * height)) ** 0.5
    return 64 * max(1, round(width * scale)), 64 * max(1, round(height * scale))


def check_feed(width: int, height: int, field: str) -> None:
    """Refuse, naming `field`, an image whose feed to the net would exceed `MAX_FEED_PIXELS`."""
    feed_w, feed_h = feed_size(width, height)
    if feed_w * feed_h > MAX_FEED_PIXELS:
        raise IcLightError(
            f"{label(field)} ({width}x{height}) is too far from square for background removal: the remover would "
            f"see it at {feed_w}x{feed_h} ({feed_w * feed_h / 1e6:.1f} megapixels; at most {MAX_FEED_PIXELS / 1e6:.1f} "
            "are allowed). Crop it, or give it with its own alpha instead of removing the background."
        )


def predict_alpha(net: RmbgNet, image: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Alpha (HxW float, 0..1) of a uint8 HxWx3 image: resized without crop, `/127 - 1`, bilinear back."""
    height, width = image.shape[:2]
    check_feed(width, height, "an image")
    feed = np.array(Image.fromarray(image).resize(feed_size(width, height), Image.LANCZOS))
    with torch.no_grad():
        alpha = net(vae_input([feed]).to(device, next(net.parameters()).dtype))
        alpha = F.interpolate(alpha.float(), size=(height, width), mode="bilinear")
    return alpha[0, 0].cpu().numpy().clip(0, 1)

