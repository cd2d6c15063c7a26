"""A restore of the checkpoint's weights that fails (out of memory moving a weight back) is retried and,
failing again, never forgotten: the checkpoint is refused, with the fix, until the restore succeeds.
And an X/Y/Z cell that fails after sampling leaves nothing of IC-Light on."""
import pytest
import torch

from generation_harness import subject, txt2img
from iclight_a1111.errors import RetryLater
from iclight_a1111.webui import merged_weights
from tiny_models import parameter_fingerprint

REFUSAL = r"could not give the checkpoint its own weights back .*out of memory.*generate again"


class OutOfMemory:
    """Every tensor move raises as CUDA does when out of memory, `failures` times (None: until switched off)."""

    def __init__(self, monkeypatch, failures=None):
        from iclight_a1111.unet import device_moves

        self.failures = failures
        move = device_moves.DeviceMoves.to

        def to(moves, tensor, device):
            if self.failures is None or self.failures > 0:
                self.failures = None if self.failures is None else self.failures - 1
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (simulated)")
            return move(moves, tensor, device)

        self.off = lambda: monkeypatch.setattr(device_moves.DeviceMoves, "to", move)
        monkeypatch.setattr(device_moves.DeviceMoves, "to", to)


def test_a_restore_that_keeps_failing_refuses_the_checkpoint_until_it_succeeds(a1111, monkeypatch):
    from modules import processing, sd_unet

    before = parameter_fingerprint(a1111.unet)
    a1111.activate("fc")
    oom = OutOfMemory(monkeypatch)
    with pytest.raises(RetryLater, match=REFUSAL):
        a1111.deactivate()
    assert sd_unet.current_unet is not None, "the failed restore was forgotten"
    with pytest.raises(RetryLater, match=REFUSAL):
        processing.run_generation(txt2img([{"enabled": False}], steps=2))
    with pytest.raises(RetryLater, match=REFUSAL), torch.no_grad():
        a1111.unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, 768))

    oom.off()
    processing.run_generation(txt2img([{"enabled": False}], steps=2))
    assert sd_unet.current_unet is None
    assert parameter_fingerprint(a1111.unet) == before, "the checkpoint's weights are not all back"


def test_a_restore_failing_once_is_retried_with_the_merged_copies_released(a1111, monkeypatch):
    from modules import sd_unet

    before = parameter_fingerprint(a1111.unet)
    a1111.activate("fc")
    OutOfMemory(monkeypatch, failures=1)
    a1111.deactivate()
    assert sd_unet.current_unet is None
    assert len(merged_weights.MERGED_WEIGHTS) == 0, "the retry did not free the merged copies' memory first"
    assert parameter_fingerprint(a1111.unet) == before


def test_an_xyz_cell_failing_after_sampling_leaves_nothing_on(a1111):
    """X/Y/Z runs each cell with `process_images(copy(p))` and catches its errors (scripts/xyz_grid.py):
    a cell that fails in decoding gets neither `postprocess` nor `close`."""
    from modules import processing, sd_unet

    def failing_decode(samples):
        raise RuntimeError("A tensor with NaNs was produced in VAE (simulated)")

    before = parameter_fingerprint(a1111.unet)
    a1111.sd_model.decode_first_stage = failing_decode
    try:
        with pytest.raises(RuntimeError, match="NaNs"):
            processing.process_images(txt2img([{"enabled": True, "foreground": subject()}], steps=2))
    finally:
        del a1111.sd_model.decode_first_stage
    assert sd_unet.current_unet is None, "IC-Light is still on after the cell failed"
    assert parameter_fingerprint(a1111.unet) == before
