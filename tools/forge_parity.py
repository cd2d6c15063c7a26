"""IC-Light on Forge's own UNet against the reference algorithm, in a Forge install's Python.

    cd <forge>/webui && ../venv/bin/python <this repo>/tools/forge_parity.py \
        models/Stable-diffusion/<an SD 1.5 checkpoint>.safetensors models/ic-light/iclight_sd15_fc.safetensors

Loads the checkpoint with Forge's loader (its `IntegratedUNet2DConditionModel` in a `KModel` in a
`UnetPatcher`), patches a clone with the extension's Forge layer, lets Forge merge the patches by loading it,
and runs the UNet on random inputs with the concat latents appended. The reference: diffusers'
`UNet2DConditionModel` with the same weights, its `conv_in` widened, the offsets added to the state dict
(the IC-Light demo's way), the concat latents appended in its forward. Prints the largest difference of the
noise predictions (fp32, on the CPU), for the file as given and converted to the ldm layout.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ARGUMENTS = sys.argv[1:3]
sys.argv[1:] = ["--always-cpu"]  # Forge reads its flags at import: on the CPU, everything in float32
sys.path[:0] = [str(Path.cwd()), str(Path(__file__).resolve().parents[1])]

import modules.paths  # noqa: E402,F401  (Forge's own search paths: its vendored packages, huggingface_guess)
from modules import shared_init  # noqa: E402

shared_init.initialize()  # the options Forge's modules read when they are imported

import torch  # noqa: E402
from backend import memory_management  # noqa: E402
from backend.loader import forge_loader  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from iclight_a1111.forge.offset_patches import read_patches, relighting_unet  # noqa: E402
from iclight_a1111.unet.key_table import to_ldm_keys  # noqa: E402
from iclight_a1111.unet.offset_files import file_source  # noqa: E402

CONFIG = Path("backend/huggingface/runwayml/stable-diffusion-v1-5/unet/config.json")


def reference_noise(unet_state: dict, offsets: dict, x, t, context, concat) -> torch.Tensor:
    config = json.loads(CONFIG.read_text())
    unet = UNet2DConditionModel.from_config(config)
    checkpoint = {"model.diffusion_model." + k: v for k, v in unet_state.items()}
    unet.load_state_dict(convert_ldm_unet_checkpoint(checkpoint, config), strict=True)
    with torch.no_grad():
        old = unet.conv_in
        wide = torch.nn.Conv2d(offsets["conv_in.weight"].shape[1], old.out_channels, old.kernel_size, old.stride, old.padding)
        wide.weight.zero_()
        wide.weight[:, :4].copy_(old.weight)
        wide.bias = old.bias
        unet.conv_in = wide
        base = unet.state_dict()
        unet.load_state_dict({k: base[k] + offsets[k] for k in base}, strict=True)
        return unet(torch.cat([x, concat], dim=1), t, context).sample


def forge_noise(engine, path: Path, x, t, context, concat) -> torch.Tensor:
    """The relit UNet's noise prediction; prints what reading the file, Forge's merge and a repeated load cost."""
    started = time.perf_counter()
    patches = read_patches(file_source(path))
    read = time.perf_counter() - started
    relit = relighting_unet(engine.forge_objects.unet, patches, concat, x.shape[0])
    started = time.perf_counter()
    memory_management.load_models_gpu([relit])  # Forge merges the patches here
    merged = time.perf_counter() - started
    again = relighting_unet(engine.forge_objects.unet, patches, concat, x.shape[0])  # the next generation's clone
    started = time.perf_counter()
    memory_management.load_models_gpu([again])
    print(f"  file read {read:.2f} s, Forge's merge {merged:.2f} s, the same patches loaded again "
          f"{time.perf_counter() - started:.3f} s")
    with torch.no_grad():
        return again.model.diffusion_model(torch.cat([x, again.extra_concat_condition], dim=1), t, context=context)


def main() -> None:
    checkpoint, iclight = map(Path, ARGUMENTS)
    engine = forge_loader(str(checkpoint))
    unet_state = {k: v.float().clone() for k, v in engine.forge_objects.unet.model.diffusion_model.state_dict().items()}
    released = load_file(str(iclight))
    g = torch.Generator().manual_seed(0)
    concat_channels = released["conv_in.weight"].shape[1] - 4
    x, t = torch.randn(2, 4, 16, 16, generator=g), torch.tensor([999.0, 321.0])
    context, concat = torch.randn(2, 77, 768, generator=g), torch.randn(2, concat_channels, 16, 16, generator=g)
    expected = reference_noise(unet_state, {k: v.float() for k, v in released.items()}, x, t, context, concat)
    with tempfile.TemporaryDirectory() as folder:
        ldm_file = Path(folder) / iclight.name
        save_file({k: v.contiguous() for k, v in to_ldm_keys(released)[0].items()}, str(ldm_file))
        for layout, path in (("released diffusers layout", iclight), ("ldm layout", ldm_file)):
            diff = (forge_noise(engine, path, x, t, context, concat) - expected).abs().max().item()
            print(f"{iclight.name} ({layout}) on Forge's UNet: max |noise prediction - reference| = {diff:.3g} "
                  f"(mean |reference| {expected.abs().mean().item():.3g})")


if __name__ == "__main__":
    main()
