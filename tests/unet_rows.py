"""What each UNet call receives, and runs of IC-Light beside other extensions' scripts and samplers."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import torch

from generation_harness import script_module
from iclight_a1111.generation.params import PARAMS

SIGMA = 2.0
C_IN = 1 / (SIGMA ** 2 + 1) ** 0.5  # k-diffusion's input scaling at SIGMA (sigma_data 1): the UNet sees x * C_IN


@contextlib.contextmanager
def first_conv_inputs(unet: torch.nn.Module):
    """Record the input of every call of the UNet's first conv (x with IC-Light's latents appended: a forward
    hook sees the input as the pre-hooks left it, whenever IC-Light's was registered)."""
    calls: list[torch.Tensor] = []
    handle = unet.input_blocks[0][0].register_forward_hook(lambda conv, args, out: calls.append(args[0].clone()))
    try:
        yield calls
    finally:
        handle.remove()


def latents_mirroring(x: torch.Tensor, concat_channels: int) -> torch.Tensor:
    """Concat latents that repeat each image's noisy latent as the UNet sees it at SIGMA (then negated, for
    fbc's second half): in any UNet call, the concat rows must equal the x rows, window and row alike."""
    parts = [x * C_IN, -x * C_IN][: concat_channels // 4]
    return torch.cat(parts, dim=1)


def assert_each_row_has_its_own_latents(calls: list[torch.Tensor]) -> None:
    assert calls, "the UNet was never called"
    for n, call in enumerate(calls):
        x = call[:, :4]
        for k in range(1, call.shape[1] // 4):
            sign = 1 if k == 1 else -1
            diff = (call[:, 4 * k:4 * k + 4] * sign - x).abs().amax(dim=(1, 2, 3))
            assert torch.all(diff < 1e-5), (
                f"UNet call {n} ({tuple(call.shape)}): rows {torch.nonzero(diff >= 1e-5).flatten().tolist()} got concat "
                "latents of another image or another window than their x"
            )


def assert_each_subject_relit_as_alone(run, first, second, label: str) -> None:
    """`run(images, seed)` relights a batch; subject i of [first, second] at seed 3 must come out as it does
    alone at seed 3 + i, and the other subject must change the result (else the check proves nothing)."""
    together = run([first, second], 3)
    alone = [run([first], 3)[0], run([second], 4)[0]]
    for i in range(2):
        diff = (together[i] - alone[i]).abs().max().item()
        assert diff < 1e-4, f"{label}: subject {i} relit in the batch differs from relit alone by {diff:.3g}"
    other_subject = (run([second], 3)[0] - alone[0]).abs().max().item()
    assert other_subject > 1e-2, f"another subject changes the result by only {other_subject:.3g}: the test proves nothing"


def denoise_step(sampler, x, conds_list, cond, uncond, cfg=3.0):
    """One CFGDenoiser call of `sampler` at SIGMA (what a k-diffusion sampler step does)."""
    sigma = torch.full((x.shape[0],), SIGMA)
    placeholder = x.new_zeros(x.shape[0], 5, 1, 1)  # what A1111 passes as image_cond for SD 1.x
    with torch.no_grad():
        return sampler.model_wrap_cfg(x, sigma, uncond=uncond, cond=(conds_list, cond), cond_scale=cfg,
                                      s_min_uncond=0.0, image_cond=placeholder)


def batch(n: int, size: int, seed: int = 0):
    """Noisy latents and prompt embeddings for `n` images (one row each, cond and uncond of 77 tokens)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, size, size, generator=g)
    cond, uncond = torch.randn(n, 77, 768, generator=g), torch.randn(n, 77, 768, generator=g)
    return x, [[(i, 1.0)] for i in range(n)], cond, uncond


def subject_sensitive_model(a1111, name: str = "iclight_sd15_fc_strong.safetensors") -> str:
    """An fc file whose first conv weighs the concat latents strongly: with the fixture's small random
    offsets, relighting one subject with another's latents changes a short run's latents by about
    1e-4, too close to batching noise to tell a wrong row from a right one."""
    from tiny_models import random_offsets, write_offsets

    offsets = random_offsets(a1111.unet, 8, seed=31)
    offsets["input_blocks.0.0.weight"][:, 4:] *= 1000
    write_offsets(a1111.model_dir / name, offsets, "diffusers")
    return name


def script_runner(*others, iclight_first: bool = True):
    """A1111's ScriptRunner with the IC-Light script and `others` (stand-ins taking no script arguments)."""
    from modules.scripts import ScriptRunner

    iclight = script_module().IcLightScript()
    iclight.args_from, iclight.args_to = 0, len(PARAMS)
    return ScriptRunner([iclight, *others] if iclight_first else [*others, iclight])


def fake_p(width: int, height: int, batch_size: int) -> SimpleNamespace:
    """What scripts read of a txt2img `p` when they hook the sampler."""
    return SimpleNamespace(width=width, height=height, batch_size=batch_size, sampler_name="Euler",
                           extra_generation_params={}, init_images=None)
