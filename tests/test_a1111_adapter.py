"""The SdUnet option/unet pair as A1111's sd_unet sees it."""
import pytest
import torch

from iclight_a1111 import a1111_adapter
from iclight_a1111.concat_unet import IcLightUnet
from tiny_models import random_offsets, write_offsets


def test_each_iclight_file_is_an_sd_unet_option_with_its_variant(a1111):
    from modules import sd_unet

    labels = {o.label: o for o in sd_unet.unet_options}
    assert set(labels) == set(a1111.labels.values())
    for variant, label in a1111.labels.items():
        option = labels[label]
        assert isinstance(option, sd_unet.SdUnetOption)
        unet = option.create_unet()
        assert isinstance(unet, sd_unet.SdUnet) and isinstance(unet, IcLightUnet)
        assert unet.source.load().variant == variant


def test_files_in_the_iclight_dir_flag_folder_are_listed(a1111, tmp_path):
    from modules import sd_unet, shared

    extra = tmp_path / "elsewhere"
    extra.mkdir()
    write_offsets(extra / "my_relight.safetensors", random_offsets(a1111.unet, 8, 1), "ldm")
    shared.cmd_opts.iclight_dir = str(extra)
    try:
        sd_unet.list_unets()
        assert "IC-Light: my_relight" in [o.label for o in sd_unet.unet_options]
    finally:
        shared.cmd_opts.iclight_dir = None


def test_automatic_sd_unet_never_selects_iclight(a1111):
    from modules import sd_unet

    sd_unet.apply_unet("Automatic")
    assert sd_unet.current_unet is None


def test_activation_through_apply_unet_runs_iclight_and_none_restores_plain(a1111):
    from modules import sd_unet

    x, t, c = torch.randn(1, 4, 8, 8), torch.tensor([400]), torch.randn(1, 77, 768)
    with torch.no_grad():
        plain = a1111.unet(x, t, context=c)
        sd_unet.apply_unet(a1111.labels["fc"])
        with sd_unet.current_unet.concat_latents(torch.randn(1, 4, 8, 8)):
            relit = a1111.unet(x, t, context=c)
        sd_unet.apply_unet("None")
        plain_again = a1111.unet(x, t, context=c)
    assert not torch.allclose(plain, relit), "IC-Light UNet output equals the plain checkpoint's"
    assert torch.equal(plain, plain_again)


def test_routing_without_an_active_iclight_unet_is_refused(a1111):
    from types import SimpleNamespace

    from iclight_a1111.errors import IcLightError

    with pytest.raises(IcLightError, match="not active"):
        a1111_adapter.route_to_active_unet(SimpleNamespace(model_wrap_cfg=None), torch.zeros(1, 4, 8, 8))


@pytest.mark.parametrize("lowvram,expected", [(False, "meta"), (True, "cpu")])
def test_merged_weights_go_to_the_device_or_stay_in_ram_under_lowvram(a1111, monkeypatch, lowvram, expected):
    from modules import devices, sd_unet, shared

    monkeypatch.setattr(devices, "device", torch.device("meta"))  # a stand-in accelerator: no data, only placement
    monkeypatch.setitem(shared.opts.data, a1111_adapter.CACHE_OPTION, False)
    a1111.sd_model.lowvram = lowvram
    sd_unet.apply_unet(a1111.labels["fc"])
    placed = {p.device.type for p in a1111.unet.parameters()}
    sd_unet.current_unet.deactivate()
    sd_unet.current_unet, sd_unet.current_unet_option = None, None
    assert placed == {expected}, f"merged weights on {placed}, expected {expected}"
