"""Every byte IC-Light takes is given back: a parked copy's page-locked RAM (without torch's caching host
allocator), the copies when the checkpoint is unloaded, copies only where free memory is known, no stale
copy after a setting cleared the cache mid-merge; and generations on a torch without `always_call`."""
import gc
import threading

import pytest
import torch

from generation_harness import settings_module, subject, txt2img
from iclight_a1111.unet.merged_cache import MergedWeightsCache, MergeKey
from iclight_a1111.unet.merge import merge_offsets
from iclight_a1111.unet.offset_files import offsets_from_tensors
from iclight_a1111.unet.weight_arena import WeightArena
from iclight_a1111.webui import device_memory, merged_weights
from test_merge_memory import linux_only, mapping_of
from tiny_models import ldm_unet, random_offsets

GIB = 2**30


class RecordingPageLock:
    """Stands in for CUDA's `cudaHostRegister` / `cudaHostUnregister`: records the ranges locked and unlocked."""

    def __init__(self):
        self.locked, self.unlocked = {}, []

    def lock(self, address, nbytes):
        self.locked[address] = nbytes
        return True

    def unlock(self, address):
        assert address in self.locked, "unlocked an address never locked"
        self.unlocked.append(address)


@pytest.fixture
def no_caching_host_allocator(monkeypatch):
    """torch's `pin_memory()` keeps the pages locked after release: any use of it fails the test."""
    def refused(*args, **kwargs):
        raise AssertionError("Tensor.pin_memory() was used: its pages stay locked after release")

    monkeypatch.setattr(torch.Tensor, "pin_memory", refused)


@linux_only
def test_a_locked_arena_is_unlocked_then_unmapped_when_its_last_tensor_goes():
    lock = RecordingPageLock()
    arena = WeightArena(4096)
    first, second = arena.empty((16,), torch.float32), arena.empty((8, 4), torch.float16)
    assert arena.lock(lock) and list(lock.locked.values()) == [4096]
    address = next(iter(lock.locked))
    del arena, first
    gc.collect()
    assert lock.unlocked == [] and mapping_of(address) is not None, "released while a tensor still lives in it"
    del second
    gc.collect()
    assert lock.unlocked == [address], "the arena's pages were not unlocked"
    assert mapping_of(address) is None or mapping_of(address)[0] != address, "the arena is still mapped"


@linux_only
def test_a_parked_copy_is_locked_in_its_own_mapping_and_given_back_on_release(a1111, monkeypatch, no_caching_host_allocator):
    from modules import shared

    from iclight_a1111.webui import sd_unet_option

    lock = RecordingPageLock()
    monkeypatch.setattr(sd_unet_option, "page_lock_for", lambda device: lock)
    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, "Park in RAM")
    copy_bytes = sum(p.numel() * p.element_size() for p in a1111.unet.parameters())
    unet = a1111.activate("fc")
    merged = [p for p in a1111.unet.parameters()]
    (address, nbytes), = lock.locked.items()
    assert nbytes >= copy_bytes, "the lock does not cover the merged copy"
    assert all(address <= p.data_ptr() < address + nbytes for p in merged if p.device.type == "cpu"), \
        "a merged weight lies outside the locked mapping"
    del unet, merged
    a1111.deactivate()
    assert lock.unlocked == [], "unlocked while the cache holds the copy"
    merged_weights.release_merged_weights()
    gc.collect()
    assert lock.unlocked == [address], "the parked copy's pages stayed locked after its release"
    assert mapping_of(address) is None or mapping_of(address)[0] != address, "the released copy is still mapped"


def test_unloading_the_checkpoint_releases_the_merged_copies(a1111, monkeypatch):
    from modules import processing, sd_models

    from test_endpoints import webui_app

    settings_module()  # loaded as A1111 loads it: wraps the checkpoint switch and unload
    client = webui_app(monkeypatch)
    for unload in (lambda: client.post("/sdapi/v1/unload-checkpoint"), sd_models.unload_model_weights):
        processing.process_images(txt2img([{"foreground": subject()}], steps=2))
        assert len(merged_weights.MERGED_WEIGHTS) == 1
        unload()
        assert len(merged_weights.MERGED_WEIGHTS) == 0, "unloading the checkpoint kept IC-Light's merged copies"


def free_memory_backends(monkeypatch):
    """Each backend's free-memory query, made to answer 6 GiB (RAM: 20 GiB)."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (6 * GIB, 24 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: GIB // 2)
    monkeypatch.setattr(torch.xpu, "mem_get_info", lambda device=None: (6 * GIB, 16 * GIB), raising=False)
    monkeypatch.setattr(device_memory, "free_ram", lambda: 20 * GIB)


@pytest.mark.parametrize("device,free", [("cuda", 6.5 * GIB), ("xpu", 6 * GIB), ("mps", 20 * GIB), ("cpu", 20 * GIB),
                                         ("privateuseone", None)])
def test_each_backend_gets_a_real_free_memory_query_or_none(monkeypatch, device, free):
    free_memory_backends(monkeypatch)
    assert device_memory.free_device_memory(torch.device(device)) == free


def test_an_xpu_torch_without_a_memory_query_counts_as_unknown(monkeypatch):
    monkeypatch.delattr(torch.xpu, "mem_get_info", raising=False)
    assert device_memory.free_device_memory(torch.device("xpu")) is None


@pytest.mark.parametrize("device,placement,second_copy", [
    ("cuda", "keep", True), ("xpu", "keep", True), ("mps", "keep", True), ("privateuseone", "park", False)])
def test_copies_stay_on_a_device_only_where_its_free_memory_is_known(a1111, monkeypatch, device, placement, second_copy):
    from modules import devices

    free_memory_backends(monkeypatch)
    monkeypatch.setattr(devices, "device", torch.device(device))
    assert merged_weights.placement(a1111.unet) == placement
    assert merged_weights.has_room(GIB, torch.device(device)) is second_copy


def test_a_cache_cleared_while_it_merges_keeps_no_stale_copy():
    unet = ldm_unet(seed=2)
    cache = MergedWeightsCache(limit=lambda: 4)
    offsets = offsets_from_tensors("fc", random_offsets(unet, 8, seed=3))

    def merge_while_the_setting_changes():
        merged = merge_offsets(unet, offsets)
        cache.clear()  # Settings > Apply: "Keep merged IC-Light weights" off, in the webui's other thread
        return merged

    key = MergeKey("checkpoint", "fc", "torch.float32", "keep")
    merged = cache.weights_for(key, unet, merge_while_the_setting_changes, False)
    assert merged and len(cache) == 0, "a copy merged before the cache was cleared was kept"
    cache.weights_for(key, unet, lambda: merge_offsets(unet, offsets), False)
    assert len(cache) == 1, "a merge after the clear is kept as before"


def test_the_cache_setting_applied_from_another_thread_during_a_merge(a1111, monkeypatch):
    """The real onchange of "Keep merged IC-Light weights", from a second thread, while an activation merges."""
    from modules import script_callbacks, shared

    from iclight_a1111.unet import concat_unet

    settings_module()
    script_callbacks.ui_settings_callback()
    merging, applied = threading.Event(), threading.Event()
    merge = concat_unet.merge_offsets

    def slow_merge(*args, **kwargs):
        merging.set()
        assert applied.wait(10), "the setting was never applied"
        return merge(*args, **kwargs)

    def apply_setting():
        merging.wait(10)
        shared.opts.data[merged_weights.CACHE_OPTION] = False
        shared.opts.data_labels[merged_weights.CACHE_OPTION].onchange()
        applied.set()

    monkeypatch.setattr(concat_unet, "merge_offsets", slow_merge)
    monkeypatch.setitem(shared.opts.data, merged_weights.CACHE_OPTION, True)
    settings = threading.Thread(target=apply_setting)
    settings.start()
    a1111.activate("fc")
    a1111.deactivate()
    settings.join()
    assert len(merged_weights.MERGED_WEIGHTS) == 0, "the cache holds a copy after caching was switched off"


def torch_2_0_forward_hooks(monkeypatch):
    """`register_forward_hook` as torch 2.0.1 has it: `prepend` and `with_kwargs`, no `always_call`."""
    register = torch.nn.Module.register_forward_hook

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        return register(self, hook, prepend=prepend, with_kwargs=with_kwargs)

    monkeypatch.setattr(torch.nn.Module, "register_forward_hook", register_forward_hook)


def test_generations_on_torch_2_0_relight_as_on_newer_torch(a1111, monkeypatch):
    from modules import processing

    def relit():
        p = txt2img([{"foreground": subject()}], steps=3, seed=5)
        return processing.process_images(p).images[0]

    expected = relit()
    torch_2_0_forward_hooks(monkeypatch)
    with pytest.raises(TypeError):
        torch.nn.Linear(1, 1).register_forward_hook(lambda *a: None, always_call=True)
    assert list(relit().getdata()) == list(expected.getdata()), "torch 2.0's hooks give another image"
