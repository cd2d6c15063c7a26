"""Reading IC-Light files: both key layouts, variant from the tensors, refusals that name the problem."""
import pytest
import torch
from safetensors.torch import save_file

from iclight_a1111.errors import ModelFileFault
from iclight_a1111.unet.merge import merge_offsets
from iclight_a1111.unet.offset_files import file_source, load_offsets, validate_offsets
from tiny_models import ldm_unet, random_offsets, write_offsets


@pytest.fixture(scope="module")
def unet():
    return ldm_unet(seed=5)


def shapes(unet):
    return {k: p.shape for k, p in unet.named_parameters()}


@pytest.mark.parametrize("in_channels", [8, 12])
def test_diffusers_ldm_and_prefixed_ldm_layouts_give_identical_merged_weights(unet, tmp_path, in_channels):
    offsets = random_offsets(unet, in_channels, seed=6)
    merged = {}
    for layout in ("diffusers", "ldm", "diffusion_model.", "model.diffusion_model."):
        loaded = load_offsets(write_offsets(tmp_path / f"{layout}x.safetensors", offsets, layout))
        validate_offsets(loaded, shapes(unet))
        merged[layout] = merge_offsets(unet, loaded)
    reference = merged.pop("diffusers")
    for layout, weights in merged.items():
        different = [k for k in reference if not torch.equal(reference[k], weights[k])]
        assert not different, f"layout {layout!r} merges differently at {different[:3]}"


def test_variant_is_read_from_the_tensors_not_the_file_name(unet, tmp_path):
    fc_named_fbc = write_offsets(tmp_path / "iclight_sd15_fbc.safetensors", random_offsets(unet, 8, 1), "diffusers")
    fbc_named_fc = write_offsets(tmp_path / "iclight_sd15_fc.safetensors", random_offsets(unet, 12, 1), "ldm")
    assert (load_offsets(fc_named_fbc).variant, load_offsets(fc_named_fbc).concat_channels) == ("fc", 4)
    assert (load_offsets(fbc_named_fc).variant, load_offsets(fbc_named_fc).concat_channels) == ("fbc", 8)


def test_merge_widens_first_conv_and_adds_in_float32(unet):
    from iclight_a1111.unet.offset_files import offsets_from_tensors

    offsets = offsets_from_tensors("x", random_offsets(unet, 12, seed=2))
    merged = merge_offsets(unet, offsets, dtype=torch.float16)
    first = merged["input_blocks.0.0.weight"]
    base = unet.input_blocks[0][0].weight
    off = offsets.tensors["input_blocks.0.0.weight"].float()
    assert first.shape == (32, 12, 3, 3) and first.dtype == torch.float16
    assert torch.equal(first[:, :4], (base + off[:, :4]).half()), "base weights are not in the first 4 channels"
    assert torch.equal(first[:, 4:], off[:, 4:].half()), "new channels must start from zero"
    bias = unet.input_blocks[0][0].bias
    assert torch.equal(merged["input_blocks.0.0.bias"], (bias + offsets.tensors["input_blocks.0.0.bias"].float()).half())


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth", ".safetensors"])
def test_pickle_files_are_refused_with_the_reason_also_when_renamed(tmp_path, suffix):
    path = tmp_path / f"iclight_sd15_fc{suffix}"
    torch.save({"conv_in.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelFileFault, match=r"is a pickle file.*not safetensors.*can run arbitrary code"):
        load_offsets(path)


def test_corrupt_file_is_refused_as_corrupt(tmp_path):
    path = tmp_path / "iclight_sd15_fc.safetensors"
    path.write_bytes(b"\x00\x01this is not a safetensors file")
    with pytest.raises(ModelFileFault, match="could not be read as a safetensors file.*download it again"):
        load_offsets(path)


def test_truncated_download_is_refused_as_corrupt(unet, tmp_path):
    path = write_offsets(tmp_path / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, 1), "diffusers")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileFault, match="corrupt or incompletely downloaded"):
        load_offsets(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFileFault, match="not found.*nothing.safetensors"):
        load_offsets(tmp_path / "nothing.safetensors")


def test_file_that_is_not_a_unet_is_refused(tmp_path):
    path = tmp_path / "rmbg.safetensors"
    save_file({"stage1.conv.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ModelFileFault, match="not an IC-Light UNet model"):
        load_offsets(path)


def test_plain_sd15_unet_file_is_refused_by_its_first_conv(unet, tmp_path):
    path = write_offsets(tmp_path / "unet.safetensors", dict(unet.state_dict()), "diffusers")
    with pytest.raises(ModelFileFault, match=r"first conv of shape \(32, 4, 3, 3\).*8 \(fc, fcon\) or 12 \(fbc\)"):
        load_offsets(path)


def test_unknown_diffusers_key_is_named(unet, tmp_path):
    from tiny_models import to_diffusers_state

    tensors = to_diffusers_state(random_offsets(unet, 8, 1))
    tensors["down_blocks.9.resnets.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "x.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    with pytest.raises(ModelFileFault, match=r"down_blocks\.9\.resnets\.0\.conv1\.weight"):
        load_offsets(path)


def test_missing_extra_and_misshaped_keys_are_named(unet):
    from iclight_a1111.unet.offset_files import offsets_from_tensors

    tensors = random_offsets(unet, 8, 1)
    del tensors["middle_block.1.proj_out.bias"]
    tensors["output_blocks.5.2.conv.weight"] = torch.zeros(3, 3)
    tensors["input_blocks.99.0.weight"] = torch.zeros(1)
    with pytest.raises(ModelFileFault) as refused:
        validate_offsets(offsets_from_tensors("bad.safetensors", tensors), shapes(unet))
    message = str(refused.value)
    assert "missing keys: middle_block.1.proj_out.bias" in message
    assert "unexpected keys: input_blocks.99.0.weight" in message
    assert "wrong shapes: output_blocks.5.2.conv.weight (3, 3) (UNet needs (128, 128, 3, 3))" in message
    assert "bad.safetensors" in message


def test_full_size_offsets_do_not_fit_a_smaller_unet(unet):
    from iclight_a1111.unet.offset_files import offsets_from_tensors

    tensors = {k: torch.zeros((v.shape[0] * 10, *v.shape[1:])) for k, v in random_offsets(unet, 8, 1).items()}
    with pytest.raises(ModelFileFault, match=r"wrong shapes: time_embed\.0\.weight"):
        validate_offsets(offsets_from_tensors("big", tensors), shapes(unet))


def test_file_is_read_tensor_by_tensor_remapped_and_equal_to_a_full_load(unet, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from iclight_a1111.unet.key_table import to_ldm_keys
    from iclight_a1111.unet.offset_files import FileTensors

    path = write_offsets(tmp_path / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, 1), "diffusers")
    monkeypatch.setattr(FileTensors, "REMAP_BYTES", 0)  # a new mapping before every tensor
    offsets = load_offsets(path)
    handles = set()
    expected, _ = to_ldm_keys(load_file(str(path)))
    for name in offsets.tensors:
        assert torch.equal(offsets.tensors[name], expected[name]), f"{name} read differently"
        handles.add(id(offsets.tensors.handle))
    assert len(handles) > 1, "the file was never mapped anew"


def test_a_replaced_file_gets_a_new_identity_even_under_the_old_hash(unet, tmp_path):
    """The merged-weight cache is keyed by this identity; a stale content hash must not keep it."""
    import os

    path = write_offsets(tmp_path / "iclight_sd15_fc.safetensors", random_offsets(unet, 8, seed=1), "diffusers")
    before = file_source(path, "stalehash").identity
    mtime_ns = path.stat().st_mtime_ns
    write_offsets(path, random_offsets(unet, 12, seed=2), "diffusers")
    os.utime(path, ns=(mtime_ns - 10**9, mtime_ns - 10**9))
    assert file_source(path, "stalehash").identity != before, "a replaced file kept the identity of the old one"
