"""A merged copy: the same bits as a float32 sum, laid out in RAM in one mapping on huge pages,
given back to the system as soon as it is released."""
import gc
import mmap
import re
import sys

import pytest
import torch

from iclight_a1111.unet.merge import merge_offsets, widen_first_conv
from iclight_a1111.unet.offset_files import offsets_from_tensors
from iclight_a1111.unet.weight_arena import HUGE_PAGES
from tiny_models import ldm_unet, random_offsets

linux_only = pytest.mark.skipif(not (HUGE_PAGES and sys.platform.startswith("linux")), reason="reads /proc/self/smaps")
BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float8_e4m3fn: torch.int8}


@pytest.fixture(scope="module")
def unet():
    return ldm_unet(seed=11)


def offsets_with_signed_zeros(unet, in_channels, dtype):
    """Random offsets with +0 and -0 planted against +0 and -0 bases: the cases where two ways of
    adding could differ in a sign bit."""
    tensors = random_offsets(unet, in_channels, seed=12, dtype=dtype)
    tensors["out.2.bias"][:2] = torch.tensor([0.0, -0.0], dtype=dtype)
    unet.out[2].bias.data[:2] = torch.tensor([-0.0, 0.0])
    return offsets_from_tensors("x", tensors)


def float32_sum(base, offset, dtype):
    """The reference's merge: the base (widened) plus the offset, in float32, stored in `dtype`."""
    base = base.float()
    if base.shape != offset.shape:
        base = widen_first_conv(base, offset.shape[1])
    return (base + offset.float()).to(dtype)


@pytest.mark.parametrize("file_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float8_e4m3fn])  # fp8: A1111's FP8 weight
@pytest.mark.parametrize("arena", [True, False])
def test_merged_weights_have_the_bits_of_a_float32_sum(unet, file_dtype, dtype, arena):
    offsets = offsets_with_signed_zeros(unet, 12, file_dtype)
    merged = merge_offsets(unet, offsets, dtype=dtype, arena=arena)
    for name, base in unet.named_parameters():
        want = float32_sum(base, offsets.tensors[name], dtype)
        got = merged[name]
        assert got.dtype == dtype and got.shape == want.shape, f"{name}: {got.dtype} {tuple(got.shape)}"
        differing = (got.view(BITS[dtype]) != want.view(BITS[dtype])).sum().item()
        assert differing == 0, f"{name}: {differing} values differ in their bits from the float32 sum"


def mapping_of(address: int) -> tuple[int, int, list[str]] | None:
    """(start, end, smaps lines) of the mapping of this process holding `address`."""
    found = None
    with open("/proc/self/smaps") as f:
        for line in f:
            header = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
            if header:
                if found is not None:
                    return found
                start, end = int(header[1], 16), int(header[2], 16)
                found = (start, end, []) if start <= address < end else None
            elif found is not None:
                found[2].append(line)
    return found


@linux_only
def test_a_merged_copy_in_ram_lies_in_one_mapping_advised_for_huge_pages(unet):
    merged = merge_offsets(unet, offsets_from_tensors("x", random_offsets(unet, 8, seed=3)))
    start, end, details = mapping_of(merged["input_blocks.0.0.weight"].data_ptr())
    outside = [name for name, t in merged.items() if not start <= t.data_ptr() < end]
    assert not outside, f"merged tensors outside the copy's mapping: {outside[:3]}"
    flags = next(line for line in details if line.startswith("VmFlags")).split()[1:]
    assert "hg" in flags, f"the copy's mapping is not advised for huge pages (VmFlags {flags})"


@linux_only
def test_a_released_copy_is_unmapped_at_once(unet):
    merged = merge_offsets(unet, offsets_from_tensors("x", random_offsets(unet, 8, seed=4)))
    address = merged["out.2.weight"].data_ptr()
    start, end, details = mapping_of(address)
    assert any(line.startswith("VmFlags") and " hg" in line for line in details), "the copy is not in its own mapping"
    del merged
    gc.collect()
    after = mapping_of(address)
    assert after is None or after[:2] != (start, end), "the released copy's memory is still mapped"


@linux_only
def test_a_kernel_refusing_huge_pages_still_gets_the_same_merged_copy(unet, monkeypatch):
    """Kernels built without transparent huge pages answer the advice with EINVAL; the copy is then
    made on ordinary pages, with the same values."""
    offsets = offsets_from_tensors("x", random_offsets(unet, 8, seed=5))
    want = merge_offsets(unet, offsets, arena=False)
    monkeypatch.setattr(mmap, "MADV_HUGEPAGE", -1)  # no such advice: the kernel answers EINVAL
    with pytest.raises(OSError):
        mmap.mmap(-1, 4096).madvise(mmap.MADV_HUGEPAGE)
    got = merge_offsets(unet, offsets)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), f"{name}: the copy made without huge pages differs"
