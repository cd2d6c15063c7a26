"""The merged-weight cache: re-activation without file read or merge, invalidated by what the weights
were made from, never holding Lora."""
import pytest
import torch

from iclight_a1111.unet import concat_unet
from iclight_a1111.unet.concat_unet import CheckpointUnet, IcLightUnet
from iclight_a1111.unet.merged_cache import MergedWeightsCache
from iclight_a1111.unet.offset_files import OffsetSource, offsets_from_tensors
from tiny_models import LDM_UNET_FORWARD, ldm_unet, parameter_fingerprint, random_offsets


class Counting:
    """An offset source and a merge that count how often they run."""

    def __init__(self, unet, monkeypatch, seed=1, in_channels=8):
        self.loads = 0
        self.merges = 0
        self.offsets = offsets_from_tensors("fc", random_offsets(unet, in_channels, seed))
        self.identity = f"content-{seed}"
        merge = concat_unet.merge_offsets

        def counting_merge(*args, **kwargs):
            self.merges += 1
            return merge(*args, **kwargs)

        monkeypatch.setattr(concat_unet, "merge_offsets", counting_merge)

    def source(self):
        def load():
            self.loads += 1
            return self.offsets

        return OffsetSource("iclight_sd15_fc.safetensors", self.identity, load)


def cycle(unet, source, cache):
    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), source, cache=cache)
    iclight.activate()
    with iclight.concat_latents(torch.ones(1, 4, 8, 8)):
        out = iclight(torch.ones(1, 4, 8, 8), torch.tensor([10]), torch.ones(1, 77, 768))
    iclight.deactivate()
    return out


def activation(unet, source, cache):
    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), source, cache=cache)
    iclight.activate()
    iclight.deactivate()


def test_second_activation_reads_no_file_and_merges_nothing(monkeypatch):
    unet, cache = ldm_unet(seed=1), MergedWeightsCache()
    counting = Counting(unet, monkeypatch)
    first = cycle(unet, counting.source(), cache)
    second = cycle(unet, counting.source(), cache)
    assert (counting.loads, counting.merges) == (1, 1), "the cached weights were not reused"
    assert torch.equal(first, second), "cached weights compute differently from freshly merged ones"


def test_without_cache_every_activation_reads_and_merges(monkeypatch):
    unet = ldm_unet(seed=1)
    counting = Counting(unet, monkeypatch)
    cycle(unet, counting.source(), None)
    cycle(unet, counting.source(), None)
    assert (counting.loads, counting.merges) == (2, 2)


@pytest.mark.parametrize("change", ["checkpoint weights", "file content", "precision"])
def test_cache_is_invalidated_by_what_the_weights_are_made_from(monkeypatch, change):
    unet, cache = ldm_unet(seed=1), MergedWeightsCache()
    counting = Counting(unet, monkeypatch)
    activation(unet, counting.source(), cache)
    if change == "checkpoint weights":
        with torch.no_grad():
            unet.output_blocks[4][1].transformer_blocks[0].attn2.to_v.weight[0, 0] += 1.0
    elif change == "file content":
        counting.identity = "content-2"
    else:
        unet.double()
        counting.offsets = offsets_from_tensors("fc", random_offsets(unet, 8, 1))
    activation(unet, counting.source(), cache)
    assert counting.merges == 2, f"changed {change} but the cached weights were reused"


def test_lora_on_top_is_never_baked_into_the_cache(monkeypatch, lora_networks):
    from test_checkpoint_integrity import LORA_MODULES, lora_on_checkpoint

    unet, cache = ldm_unet(seed=3), MergedWeightsCache()
    lora_on_checkpoint(lora_networks, unet)
    counting = Counting(unet, monkeypatch, seed=4)
    before = parameter_fingerprint(unet)

    iclight = IcLightUnet(CheckpointUnet(unet, LDM_UNET_FORWARD), counting.source(), cache=cache)
    iclight.activate()
    clean = {n: unet.get_submodule(n).weight.detach().clone() for n in LORA_MODULES}
    for name in LORA_MODULES:
        lora_networks.network_apply_weights(unet.get_submodule(name))
    iclight.deactivate()

    for name in LORA_MODULES:
        assert torch.equal(cache.weights[name + ".weight"], clean[name]), f"{name}: Lora baked into the cache"
    assert parameter_fingerprint(unet) == before
    cycle(unet, counting.source(), cache)
    assert counting.merges == 1, "the Lora-carrying checkpoint did not hit the cache of its original weights"


def test_cache_setting_off_keeps_nothing(a1111):
    from modules import shared

    from iclight_a1111.webui import merged_weights

    shared.opts.data[merged_weights.CACHE_OPTION] = False
    try:
        merged_weights.MERGED_WEIGHTS.clear()
        a1111.activate("fc")
        a1111.deactivate()
        assert merged_weights.MERGED_WEIGHTS.weights is None
        shared.opts.data[merged_weights.CACHE_OPTION] = True
        a1111.activate("fc")
        a1111.deactivate()
        assert merged_weights.MERGED_WEIGHTS.weights is not None
        shared.opts.data[merged_weights.CACHE_OPTION] = False
        merged_weights.on_cache_setting_changed()
        assert merged_weights.MERGED_WEIGHTS.weights is None, "turning the setting off did not free the weights"
    finally:
        shared.opts.data.pop(merged_weights.CACHE_OPTION, None)


def test_an_entry_is_held_for_one_unet_object_only(monkeypatch):
    import gc

    unet, twin = ldm_unet(seed=0), ldm_unet(seed=0)  # the same weights in two model objects
    counting = Counting(unet, monkeypatch)
    cache = MergedWeightsCache()
    cycle(unet, counting.source(), cache)
    cycle(twin, counting.source(), cache)
    assert counting.merges == 2, "merged weights made for one model object were used for another"
    assert cache.held_for(twin) and not cache.held_for(unet)
    del twin
    gc.collect()
    assert not cache.held_for(None), "an entry whose model is gone counts as held for 'no model'"


class TwoFiles:
    """An fc and an fbc source for one UNet, counting how often each file is read."""

    def __init__(self, unet):
        self.loads = {"fc": 0, "fbc": 0}
        self.offsets = {v: offsets_from_tensors(v, random_offsets(unet, c, s)) for v, c, s in (("fc", 8, 1), ("fbc", 12, 2))}

    def source(self, variant):
        def load():
            self.loads[variant] += 1
            return self.offsets[variant]

        return OffsetSource(f"iclight_sd15_{variant}.safetensors", f"content-{variant}", load)


@pytest.mark.parametrize("copies, reads", [(1, 8), (2, 2)])
def test_requests_alternating_fc_and_fbc_read_each_file_once_when_two_copies_are_kept(copies, reads):
    unet = ldm_unet(seed=1)
    files, cache = TwoFiles(unet), MergedWeightsCache(limit=lambda: copies)
    for variant in ["fc", "fbc"] * 4:
        activation(unet, files.source(variant), cache)
    assert sum(files.loads.values()) == reads, f"{files.loads} file reads for 8 alternating requests, {copies} copies kept"
    assert len(cache) == copies


def test_the_least_recently_used_copy_is_released_first():
    unet = ldm_unet(seed=1)
    files, cache = TwoFiles(unet), MergedWeightsCache(limit=lambda: 2)
    files.offsets["fcon"] = files.offsets["fc"]
    files.loads["fcon"] = 0
    for variant in ("fc", "fbc", "fc", "fcon"):  # fbc is the least recently used when fcon arrives
        activation(unet, files.source(variant), cache)
    activation(unet, files.source("fc"), cache)
    assert files.loads == {"fc": 1, "fbc": 1, "fcon": 1}, "the most recently used copy was released"
    activation(unet, files.source("fbc"), cache)
    assert files.loads["fbc"] == 2 and len(cache) == 2


def test_a_copy_that_would_not_fit_releases_the_others_first():
    unet = ldm_unet(seed=1)
    asked = []

    def has_room(nbytes, device):
        asked.append((nbytes, device.type))
        return False

    files, cache = TwoFiles(unet), MergedWeightsCache(limit=lambda: 4, has_room=has_room)
    for variant in ("fc", "fbc", "fc"):
        activation(unet, files.source(variant), cache)
    assert len(cache) == 1 and files.loads == {"fc": 2, "fbc": 1}, "a copy was kept though memory said no"
    unet_bytes = sum(p.numel() * p.element_size() for p in unet.parameters())
    assert asked and all(a == (unet_bytes, "cpu") for a in asked), f"asked about {asked[:2]}, one UNet on the CPU expected"


def test_cached_activation_samples_no_weight_until_one_is_written(monkeypatch):
    unet, cache = ldm_unet(seed=1), MergedWeightsCache()
    counting = Counting(unet, monkeypatch)
    sampled = []
    fingerprint = concat_unet.unet_fingerprint
    monkeypatch.setattr(concat_unet, "unet_fingerprint", lambda u: sampled.append(1) or fingerprint(u))
    for _ in range(3):
        activation(unet, counting.source(), cache)
    assert len(sampled) == 1, f"the checkpoint's weights were sampled {len(sampled)} times for 3 activations"
    with torch.no_grad():
        unet.middle_block[1].proj_in.weight.mul_(1.0)  # written in place, values unchanged
    activation(unet, counting.source(), cache)
    assert len(sampled) == 2, "a weight written in place did not make the cache look at the weights again"
    assert counting.merges == 1, "same values: the cached copy should still be used"
