"""IC-Light as A1111's current SdUnet: activated per generation without device round trips, placed
for every memory mode, refused beside another SdUnet, released with the checkpoint."""
import importlib.util

import pytest
import torch

from iclight_a1111.webui import merged_weights
from iclight_a1111.webui import host as webui_host
from iclight_a1111.unet.concat_unet import IcLightUnet
from iclight_a1111.errors import IcLightError
from generation_harness import ROOT, subject, txt2img
from tiny_models import parameter_fingerprint, random_offsets, write_offsets

META = torch.device("meta")  # the stand-in accelerator: placement without data


def test_iclight_files_are_not_offered_as_sd_unet_options(a1111):
    from modules import sd_unet

    sd_unet.list_unets()
    assert not [o.label for o in sd_unet.unet_options if "IC-Light" in o.label]


def test_activation_makes_iclight_the_current_sd_unet_and_deactivation_restores_plain(a1111):
    from modules import sd_unet

    x, t, c = torch.randn(1, 4, 8, 8), torch.tensor([400]), torch.randn(1, 77, 768)
    with torch.no_grad():
        plain = a1111.unet(x, t, context=c)
        unet = a1111.activate("fc")
        assert isinstance(sd_unet.current_unet, sd_unet.SdUnet) and isinstance(unet, IcLightUnet)
        assert sd_unet.current_unet_option.label == "IC-Light: iclight_sd15_fc"
        with unet.concat_latents(torch.randn(1, 4, 8, 8)):
            relit = a1111.unet(x, t, context=c)
        a1111.deactivate()
        plain_again = a1111.unet(x, t, context=c)
    assert sd_unet.current_unet is None and sd_unet.current_unet_option is None
    assert not torch.allclose(plain, relit), "IC-Light UNet output equals the plain checkpoint's"
    assert torch.equal(plain, plain_again)


def test_a1111_reloading_the_checkpoint_deactivates_iclight_first(a1111):
    """sd_models.reload_model_weights calls `apply_unet("None")` before loading new weights."""
    from modules import sd_unet

    before = parameter_fingerprint(a1111.unet)
    a1111.activate("fc")
    sd_unet.apply_unet("None")
    assert sd_unet.current_unet is None
    assert parameter_fingerprint(a1111.unet) == before


@pytest.fixture
def on_meta_device(a1111, monkeypatch):
    """The checkpoint UNet on a stand-in accelerator (no data: placement only), cache off."""
    from modules import devices, shared

    monkeypatch.setattr(devices, "device", META)
    monkeypatch.setitem(shared.opts.data, merged_weights.CACHE_OPTION, False)
    a1111.sd_model.model.diffusion_model = a1111.unet.to(META)
    return a1111


def record_tensor_moves(monkeypatch) -> list[tuple[str, str, tuple]]:
    """Every move of a tensor to another device, at the tensor level (`Tensor.to`, `.cpu`, `.cuda`;
    `Module.to` goes through `Tensor.to`): (from, to, shape)."""
    moves = []
    for name in ("to", "cpu", "cuda"):
        original = getattr(torch.Tensor, name)

        def recording(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            if isinstance(result, torch.Tensor) and result.device != self.device:
                moves.append((self.device.type, result.device.type, tuple(self.shape)))
            return result

        monkeypatch.setattr(torch.Tensor, name, recording)
    return moves


def test_keep_mode_moves_no_checkpoint_weight_and_nothing_at_all_once_cached(on_meta_device, monkeypatch):
    """Two generations' activations, the checkpoint on the stand-in accelerator: the first moves only
    the file's offsets onto it, the second nothing; no memory collection per generation."""
    from modules import devices, shared

    from iclight_a1111.unet import concat_unet

    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, "Keep on GPU")
    monkeypatch.setitem(shared.opts.data, merged_weights.CACHE_OPTION, True)
    # The cache key samples weight values, which a meta tensor has none of; names and shapes stand in.
    monkeypatch.setattr(concat_unet, "unet_fingerprint", lambda unet: str([p.shape for p in unet.parameters()]))
    collected = []
    monkeypatch.setattr(devices, "torch_gc", lambda: collected.append("torch_gc"))
    moves = record_tensor_moves(monkeypatch)
    per_generation = []
    for _ in range(2):
        on_meta_device.activate("fc")
        on_meta_device.deactivate()
        per_generation.append(moves[:])
        moves.clear()
    first, second = per_generation
    assert first and all(move[:2] == ("cpu", "meta") for move in first), f"first activation moved {first}"
    assert second == [], f"a cached activation in keep mode moved {len(second)} tensors: {second[:3]}"
    assert collected == [], "memory collected per generation"


def test_keep_setting_merges_on_the_device_and_counts_the_offsets_brought_there(on_meta_device, monkeypatch):
    """The only transfer of a first activation in keep mode is the file's offsets to the device; the
    bench reports it with the rest."""
    from modules import shared
    from safetensors import safe_open

    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, "Keep on GPU")
    originals = dict(on_meta_device.unet.named_parameters())
    unet = on_meta_device.activate("fc")
    merged_devices = {p.device.type for p in on_meta_device.unet.parameters()}
    on_meta_device.deactivate()
    assert merged_devices == {"meta"}, f"merged weights on {merged_devices}, not on the generation device"
    with safe_open(str(on_meta_device.model_dir / "iclight_sd15_fc.safetensors"), "pt") as f:
        offset_bytes = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())
    assert unet.moves.bytes == offset_bytes, f"{unet.moves.bytes} bytes counted, the offsets alone are {offset_bytes}"
    restored = dict(on_meta_device.unet.named_parameters())
    assert all(restored[n] is p and p.device == META for n, p in originals.items()), "checkpoint not restored in place"


def test_park_setting_parks_each_checkpoint_weight_in_ram_and_brings_it_back(a1111, monkeypatch):
    """What parking asks to move, recorded: every checkpoint weight to RAM on activation, and back to
    its replacement's device on deactivation (data moves between two real devices need a GPU)."""
    from modules import shared

    from iclight_a1111.unet import concat_unet
    from iclight_a1111.unet import device_moves

    class Recording(device_moves.DeviceMoves):
        def to(self, tensor, device):
            asked.append(str(device))
            return super().to(tensor, device)

    asked = []
    monkeypatch.setattr(concat_unet, "DeviceMoves", Recording)
    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, "Park in RAM")
    monkeypatch.setitem(shared.opts.data, merged_weights.CACHE_OPTION, False)
    count = len(list(a1111.unet.parameters()))
    before = parameter_fingerprint(a1111.unet)
    unet = a1111.activate("fc")
    assert unet.placement == "park"
    assert asked == ["cpu"] * 4 * count, \
        "each weight: its offset and base to RAM for the merge, merged to the parameter's device, original parked in RAM"
    asked.clear()
    a1111.deactivate()
    assert asked == ["cpu"] * count, "each original goes back to its replacement's device"
    assert parameter_fingerprint(a1111.unet) == before


def test_cached_activation_in_keep_mode_moves_zero_bytes(a1111, monkeypatch):
    from modules import shared

    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, "Keep on GPU")
    a1111.activate("fc")
    a1111.deactivate()
    unet = a1111.activate("fc")
    assert merged_weights.MERGED_WEIGHTS.key.placement == "keep"
    assert unet.moves.bytes == 0


def meta_as_accelerator(monkeypatch) -> None:
    """Let CPU and meta tensors move both ways as CPU and CUDA ones do: what comes back from the meta
    device comes back as zeros, and a parameter's data is swapped in place (`param.data = ...`)
    across the two, which `set_data` allows between CPU and CUDA but not with meta."""
    from modules import devices

    monkeypatch.setattr(devices, "device", META)
    for name in ("to", "cpu"):
        original = getattr(torch.Tensor, name)

        def zeros_from_meta(self, *args, _original=original, **kwargs):
            try:
                return _original(self, *args, **kwargs)
            except NotImplementedError:  # "Cannot copy out of meta tensor"
                return _original(torch.zeros(self.shape, dtype=self.dtype), *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, zeros_from_meta)
    data = torch._C.TensorBase.data

    def set_data(param, value):
        try:
            data.__set__(param, value)
        except RuntimeError:  # incompatible tensor types
            torch.utils.swap_tensors(param, torch.nn.Parameter(value, requires_grad=param.requires_grad))

    monkeypatch.setattr(torch.nn.Parameter, "data", property(data.__get__, set_data), raising=False)


@pytest.mark.parametrize("medvram", [True, False])
def test_under_medvram_and_lowvram_each_weight_goes_back_where_the_hooks_left_its_module(a1111, monkeypatch, medvram):
    """The hooks of modules/lowvram.py move modules between RAM and the accelerator (here the meta
    device) while IC-Light runs; each checkpoint parameter must go back as its own object to the
    device its module is on when IC-Light ends, where the hooks expect it."""
    from modules import lowvram

    meta_as_accelerator(monkeypatch)
    lowvram.module_in_gpu = None
    lowvram.setup_for_low_vram(a1111.sd_model, use_medvram=medvram)
    assert merged_weights.placement(a1111.unet) == "park", "--medvram/--lowvram must park the checkpoint in RAM"
    originals = dict(a1111.unet.named_parameters())

    unet = a1111.activate("fc")
    x, t, c = torch.randn(2, 4, 8, 8, device=META), torch.full((2,), 500, device=META), torch.randn(2, 77, 768, device=META)
    with unet.concat_latents(torch.randn(2, 4, 8, 8, device=META)):
        for _ in range(2):
            a1111.sd_model.model(x, t, c_crossattn=[c])
    left_by_hooks = {name: p.device for name, p in a1111.unet.named_parameters()}
    a1111.deactivate()

    assert lowvram.module_in_gpu is not None, "the lowvram hooks did not run"
    assert META in left_by_hooks.values() and (medvram or torch.device("cpu") in left_by_hooks.values()), \
        f"the hooks did not spread the UNet over both devices: {set(left_by_hooks.values())}"
    restored = dict(a1111.unet.named_parameters())
    wrong = [f"{n} on {p.device} (module on {left_by_hooks[n]})" for n, p in restored.items() if p.device != left_by_hooks[n]]
    assert not wrong, f"{len(wrong)} weights restored elsewhere than their module: {wrong[:3]}"
    assert all(p is originals[n] for n, p in restored.items()), "checkpoint parameter objects not restored"


def test_automatic_placement_keeps_on_a_device_without_separate_vram(a1111):
    assert merged_weights.placement(a1111.unet) == "keep"


def test_another_selected_sd_unet_is_refused_by_name(a1111, monkeypatch):
    from modules import processing, sd_unet, shared

    class TensorRtOption(sd_unet.SdUnetOption):
        label, model_name = "[TRT] tiny-sd15", "tiny-sd15"

    monkeypatch.setattr(sd_unet, "unet_options", [TensorRtOption()])
    monkeypatch.setattr(shared.opts, "sd_unet", "[TRT] tiny-sd15")
    before = parameter_fingerprint(a1111.unet)
    with pytest.raises(IcLightError, match=r"SD Unet uses '\[TRT\] tiny-sd15'.*Set SD Unet to None"):
        processing.process_images(txt2img([{"enabled": True, "foreground": subject()}], steps=2))
    assert parameter_fingerprint(a1111.unet) == before


def settings_script():
    spec = importlib.util.spec_from_file_location("iclight_settings", ROOT / "scripts" / "iclight_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_are_registered_and_a_checkpoint_load_releases_the_cache(a1111):
    from modules import script_callbacks, shared

    settings_script()
    script_callbacks.ui_settings_callback()
    assert {merged_weights.CACHE_OPTION, merged_weights.COPIES_OPTION, merged_weights.PLACEMENT_OPTION} <= set(shared.opts.data_labels)
    assert shared.opts.data_labels[merged_weights.COPIES_OPTION].default == "Automatic"
    assert shared.opts.data_labels[merged_weights.PLACEMENT_OPTION].component_args["choices"] == [
        "Automatic", "Keep on GPU", "Park in RAM"]
    for key in (merged_weights.CACHE_OPTION, merged_weights.COPIES_OPTION, merged_weights.PLACEMENT_OPTION):
        info = shared.opts.data_labels[key]
        # A1111 lists a section without a category_id under "Uncategorized"; "sd" is "Stable Diffusion".
        assert (info.section, info.category_id) == (("iclight", "IC-Light"), "sd"), f"{key} is not under Stable Diffusion"
    a1111.activate("fc")
    a1111.deactivate()
    assert merged_weights.MERGED_WEIGHTS.weights is not None
    script_callbacks.model_loaded_callback(a1111.sd_model)
    assert merged_weights.MERGED_WEIGHTS.weights is None, "the merged weights of the old checkpoint are still held"


def test_first_activation_shows_reading_and_merging_in_the_progress_bar(a1111, monkeypatch):
    from modules import shared

    seen = []

    class WatchedState(type(shared.state)):
        def __setattr__(self, name, value):
            seen.append((name, value))
            super().__setattr__(name, value)

    monkeypatch.setattr(shared, "state", WatchedState())
    a1111.activate("fc")
    a1111.deactivate()
    parameters = len(list(a1111.unet.parameters()))
    assert ("textinfo", "IC-Light: reading and merging weights") in seen
    assert ("sampling_steps", parameters) in seen and ("sampling_step", parameters) in seen, \
        "the merge did not advance the job's steps to one per UNet parameter"
    assert shared.state.textinfo is None and shared.state.sampling_step == 0, "the progress text was left behind"
    seen.clear()
    a1111.activate("fc")  # cached: nothing read or merged, nothing to report
    a1111.deactivate()
    assert ("textinfo", "IC-Light: reading and merging weights") not in seen


def test_without_hashing_fc_and_fcon_files_never_share_merged_weights(a1111, monkeypatch):
    from modules import shared

    monkeypatch.setattr(shared.cmd_opts, "no_hashing", True)
    write_offsets(a1111.model_dir / "iclight_sd15_fcon.safetensors", random_offsets(a1111.unet, 8, seed=77), "diffusers")
    host = webui_host.A1111Host()
    weights = {}
    for name in ("iclight_sd15_fc.safetensors", "iclight_sd15_fcon.safetensors"):
        host.activate(host.find_model(name))
        weights[name] = a1111.unet.input_blocks[0][0].weight.detach().clone()
        host.deactivate()
    assert not torch.equal(*weights.values()), "fcon ran with fc's cached weights"
    assert host.short_hash(host.find_model("iclight_sd15_fc.safetensors")) == ""


def test_activation_beside_another_active_sd_unet_is_refused_by_name(a1111):
    from modules import sd_unet

    class OtherUnet(sd_unet.SdUnet):
        option = type("Option", (), {"label": "[TRT] tiny-sd15"})()

    before = parameter_fingerprint(a1111.unet)
    sd_unet.current_unet = OtherUnet()
    try:
        with pytest.raises(IcLightError, match=r"Another UNet \('\[TRT\] tiny-sd15'"):
            a1111.activate("fc")
    finally:
        sd_unet.current_unet = None
    assert parameter_fingerprint(a1111.unet) == before


@pytest.mark.parametrize("free_gib,expected", [(12, "keep"), (2, "park")])
def test_automatic_placement_on_cuda_keeps_only_when_a_second_unet_fits(a1111, monkeypatch, free_gib, expected):
    from modules import devices

    monkeypatch.setattr(devices, "device", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free_gib * 2**30, 80 * 2**30))
    assert merged_weights.placement(a1111.unet) == expected


def test_a_file_replaced_by_one_with_an_older_mtime_is_hashed_and_merged_anew(a1111):
    """A1111's hash cache (by title, reused unless the mtime is newer) would keep the old hash."""
    import hashlib
    import os

    host = webui_host.A1111Host()
    path = a1111.model_dir / "iclight_sd15_fc.safetensors"
    host.activate(host.find_model(path.name))
    old_weight = a1111.unet.input_blocks[0][0].weight.detach().clone()
    host.deactivate()
    old_mtime_ns = path.stat().st_mtime_ns
    write_offsets(path, random_offsets(a1111.unet, 8, seed=99), "diffusers")
    os.utime(path, ns=(old_mtime_ns - 10**9, old_mtime_ns - 10**9))

    model = host.find_model(path.name)
    assert host.short_hash(model) == hashlib.sha256(path.read_bytes()).hexdigest()[:10], "the old file's hash is shown"
    host.activate(model)
    new_weight = a1111.unet.input_blocks[0][0].weight.detach().clone()
    host.deactivate()
    assert not torch.equal(old_weight, new_weight), "the replaced file ran with the old file's cached merged weights"


@pytest.mark.parametrize("setting", ["Keep on GPU", "Automatic", "Park in RAM"])
def test_keep_on_gpu_overridden_under_medvram_is_said_in_the_label_and_the_console(a1111, monkeypatch, capsys, setting):
    from modules import script_callbacks, shared

    settings_script()
    script_callbacks.ui_settings_callback()
    assert "--medvram/--lowvram it is always parked" in shared.opts.data_labels[merged_weights.PLACEMENT_OPTION].label
    monkeypatch.setitem(shared.opts.data, merged_weights.PLACEMENT_OPTION, setting)
    monkeypatch.setattr(a1111.sd_model, "lowvram", True)
    capsys.readouterr()
    assert merged_weights.placement(a1111.unet) == "park"
    notes = [line for line in capsys.readouterr().out.splitlines() if "--medvram/--lowvram" in line]
    if setting == "Keep on GPU":
        assert len(notes) == 1 and "'Keep on GPU' is not followed" in notes[0], f"no console note: {notes}"
    else:
        assert notes == [], f"a note for a setting that is followed: {notes}"
