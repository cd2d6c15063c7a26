"""Mirrors Tiled VAE (pkuliyi2015/multidiffusion-upscaler-for-automatic1111, commit 22798f6, scripts/tilevae.py).

- `Script.process` (lines 704-745): `forward` of the VAE's `encoder` and `decoder` objects
  (`p.sd_model.first_stage_model`) replaced by a `VAEHook`, the original kept as `original_forward`;
  `postprocess` (747-758) puts them back. So every encode and decode from the script's `process` hook
  until the generation's `postprocess` goes through it, whoever calls `encode_first_stage` /
  `decode_first_stage`.
- `VAEHook.__call__` (375-388): an input no larger than the tile size plus twice the padding (32 pixels
  for the encoder, 11 latent pixels for the decoder) runs the original forward untouched; a larger one
  is split into tiles (`split_tiles`, 405-460), each tile padded, run, and its valid region cropped
  into the output (`crop_valid_region`, 248-262; `vae_tile_forward`, 507-655).

Departure: each padded tile runs through the original forward on its own; the real hook runs the
network layer by layer over all tiles to share GroupNorm statistics between them (and estimates them
on a downscaled input in "fast" mode). Both give output of the untiled shape that differs from the
untiled result; neither touches an input below the tile size.
"""
import math

from modules.scripts import Script


class VAEHook:
    def __init__(self, net, tile_size, is_decoder):
        self.net, self.tile_size, self.is_decoder = net, tile_size, is_decoder
        self.pad = 11 if is_decoder else 32
        self.tiled_calls = 0
        self.calls = []  # input shapes, in order

    def __call__(self, x):
        self.calls.append(tuple(x.shape))
        if max(x.shape[2:]) <= self.pad * 2 + self.tile_size:
            return self.net.original_forward(x)
        self.tiled_calls += 1
        return self.tiled_forward(x)

    def spans(self, size):
        """(start, end) of each tile's valid region along one side; the outer tiles reach the border."""
        n = max(1, math.ceil((size - 2 * self.pad) / self.tile_size))
        step = math.ceil((size - 2 * self.pad) / n)
        cuts = [0] + [self.pad + i * step for i in range(1, n)] + [size]
        return list(zip(cuts[:-1], cuts[1:]))

    def tiled_forward(self, x):
        scale = 8 if self.is_decoder else 1 / 8
        height, width = x.shape[2:]
        out = None
        for y0, y1 in self.spans(height):
            for x0, x1 in self.spans(width):
                top, left = max(0, y0 - self.pad), max(0, x0 - self.pad)
                tile = self.net.original_forward(x[:, :, top:min(height, y1 + self.pad), left:min(width, x1 + self.pad)])
                if out is None:
                    out = tile.new_zeros(x.shape[0], tile.shape[1], int(height * scale), int(width * scale))
                valid = tile[:, :, int((y0 - top) * scale):int((y1 - top) * scale), int((x0 - left) * scale):int((x1 - left) * scale)]
                out[:, :, int(y0 * scale):int(y1 * scale), int(x0 * scale):int(x1 * scale)] = valid
        return out


class TiledVAEScript(Script):
    """The always-on script, with its settings given to the constructor instead of as script arguments."""

    args_from = args_to = 0

    def __init__(self, encoder_tile_size=3072, decoder_tile_size=192):
        self.encoder_tile_size, self.decoder_tile_size = encoder_tile_size, decoder_tile_size
        self.encoder_hook = self.decoder_hook = None

    def title(self):
        return "Tiled VAE"

    def process(self, p, *args):
        vae = p.sd_model.first_stage_model
        for net in (vae.encoder, vae.decoder):
            if not hasattr(net, "original_forward"):
                net.original_forward = net.forward
        self.encoder_hook = vae.encoder.forward = VAEHook(vae.encoder, self.encoder_tile_size, is_decoder=False)
        self.decoder_hook = vae.decoder.forward = VAEHook(vae.decoder, self.decoder_tile_size, is_decoder=True)

    def postprocess(self, p, processed, *args):
        vae = p.sd_model.first_stage_model
        for net in (vae.encoder, vae.decoder):
            if isinstance(net.forward, VAEHook):
                net.forward = net.original_forward
