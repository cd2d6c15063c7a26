"""How many merged copies A1111 keeps (Settings > IC-Light), and memory that comes back when they go."""
import ctypes
import sys

import pytest

from iclight_a1111.webui import device_memory, merged_weights

GIB = 2**30


def alternate(a1111, n=4):
    for variant in ["fc", "fbc"] * n:
        a1111.activate(variant)
        a1111.deactivate()


@pytest.fixture
def file_reads(monkeypatch):
    """The IC-Light files read, by name."""
    from iclight_a1111.unet import offset_files

    reads = []
    load_offsets = offset_files.load_offsets

    def counted(path):
        reads.append(str(path).rsplit("/", 1)[-1])
        return load_offsets(path)

    monkeypatch.setattr(offset_files, "load_offsets", counted)
    return reads


@pytest.mark.parametrize("free_gib, copies, reads", [(64, 2, 2), (0, 1, 8)])
def test_automatic_keeps_the_copies_that_fit_after_the_checkpoint(a1111, monkeypatch, file_reads, free_gib, copies, reads):
    monkeypatch.setattr(device_memory, "free_ram", lambda: free_gib * GIB)
    alternate(a1111)
    assert len(merged_weights.MERGED_WEIGHTS) == copies
    assert len(file_reads) == reads, f"8 alternating fc/fbc requests read {len(file_reads)} files: {file_reads}"


def test_the_setting_caps_the_copies_whatever_fits(a1111, monkeypatch, file_reads):
    from modules import shared

    monkeypatch.setattr(device_memory, "free_ram", lambda: 64 * GIB)
    monkeypatch.setitem(shared.opts.data, merged_weights.COPIES_OPTION, "1")
    alternate(a1111)
    assert len(merged_weights.MERGED_WEIGHTS) == 1 and len(file_reads) == 8


def test_automatic_leaves_a_generation_its_headroom(a1111, monkeypatch):
    """Room for one more UNet copy, but not for it and the headroom: the older copy goes."""
    unet_bytes = sum(p.numel() * p.element_size() for p in a1111.unet.parameters())
    monkeypatch.setattr(device_memory, "free_ram", lambda: merged_weights.RAM_HEADROOM + unet_bytes - 1)
    alternate(a1111, 1)
    assert len(merged_weights.MERGED_WEIGHTS) == 1
    monkeypatch.setattr(device_memory, "free_ram", lambda: merged_weights.RAM_HEADROOM + unet_bytes)
    alternate(a1111, 1)
    assert len(merged_weights.MERGED_WEIGHTS) == 2


def resident_anonymous_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc's arenas are what is returned")
@pytest.mark.parametrize("cache", [True, False])
def test_a_released_merged_copy_gives_its_memory_back(a1111, monkeypatch, cache):
    from modules import shared

    monkeypatch.setitem(shared.opts.data, merged_weights.CACHE_OPTION, cache)
    copy_bytes = sum(p.numel() * p.element_size() for p in a1111.unet.parameters())
    a1111.activate("fc")
    a1111.deactivate()
    merged_weights.release_merged_weights()
    ctypes.CDLL(None).malloc_trim(0)  # the test's own: freed memory out of glibc's arenas
    baseline = resident_anonymous_bytes()  # after a first activation: the code and buffers it loads once are in
    a1111.activate("fc")
    held = resident_anonymous_bytes()
    a1111.deactivate()
    if cache:
        merged_weights.release_merged_weights()
    kept = resident_anonymous_bytes() - baseline
    assert held - baseline > copy_bytes // 2, "the merged copy did not show in resident memory"
    assert kept < copy_bytes // 4, f"{kept / 2**20:.1f} MiB of a {copy_bytes / 2**20:.1f} MiB merged copy still resident"
