"""RMBG-1.4 in torch: the released weight layout, the reference preprocessing, and its use in a generation."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from iclight_a1111.images.background_removal import RmbgNet, feed_size, load_rmbg, predict_alpha
from iclight_a1111.errors import ModelFileFault
from iclight_a1111.images.vae_encoding import composite_on_grey, resize_and_center_crop

LAYOUT = Path(__file__).parent / "data" / "rmbg14_layout.tsv"


def released_layout():
    rows = [line.split("\t") for line in LAYOUT.read_text().splitlines() if not line.startswith("#")]
    return {name: (tuple(int(n) for n in shape.split(",") if n), dtype) for name, shape, dtype in rows}


def random_released_file(path, seed=0):
    """A file laid out as the released model.safetensors, random weights, sane BatchNorm statistics."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (shape, dtype) in released_layout().items():
        if dtype == "int64":
            tensors[name] = torch.zeros(shape, dtype=torch.int64)
        elif name.endswith("running_var"):
            tensors[name] = torch.rand(shape, generator=g) + 0.5
        else:
            tensors[name] = torch.randn(shape, generator=g) * 0.1
    save_file(tensors, str(path))
    return path


@pytest.fixture(scope="module")
def rmbg_file(tmp_path_factory):
    return random_released_file(tmp_path_factory.mktemp("rmbg") / "model.safetensors")


def test_state_dict_has_the_released_names_shapes_and_dtypes():
    ours = {k: (tuple(v.shape), str(v.dtype).split(".")[-1]) for k, v in RmbgNet().state_dict().items()}
    released = released_layout()
    assert len(released) == 798
    assert sorted(set(released) ^ set(ours))[:5] == [], "names differ from the released layout"
    wrong = [k for k in released if released[k] != ours[k]]
    assert not wrong, f"shapes or dtypes differ: {wrong[:5]}"


def test_released_layout_file_loads_strictly(rmbg_file):
    net = load_rmbg(rmbg_file)
    assert not net.training


def test_file_of_another_model_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"conv_in.weight": torch.zeros(64, 3, 3, 3)}, str(path))
    with pytest.raises(ModelFileFault, match="is not the RMBG-1.4 background removal model"):
        load_rmbg(path)


@pytest.mark.parametrize("size", [(513, 771), (771, 513), (1000, 10), (10, 1000), (10000, 1), (1, 1), (64, 64)])
def test_feed_size_keeps_about_a_megapixel_in_multiples_of_64(size):
    w, h = feed_size(*size)
    assert w % 64 == 0 and h % 64 == 0 and w >= 64 and h >= 64
    if min(size) >= 10:
        assert 0.75 < w * h / 1024 ** 2 < 1.3, f"{size} -> {(w, h)}"
        assert abs(np.log((w / h) / (size[0] / size[1]))) < 0.25, f"{size} -> {(w, h)} lost the aspect ratio"


@pytest.mark.parametrize("height,width", [(37, 53), (9, 300)])
def test_alpha_has_the_image_size_is_in_range_and_deterministic(rmbg_file, height, width):
    net = load_rmbg(rmbg_file)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = predict_alpha(net, image)
    assert alpha.shape == (height, width) and alpha.min() >= 0 and alpha.max() <= 1
    assert np.array_equal(alpha, predict_alpha(net, image)), "the same image gave two different alphas"


def test_generation_cuts_the_subject_out_with_the_remover(a1111, rmbg_file):
    import shutil

    from modules import processing

    from generation_harness import subject, txt2img

    rmbg_folder = a1111.model_dir.parent / "rmbg"
    rmbg_folder.mkdir()
    shutil.copy(rmbg_file, rmbg_folder / "model.safetensors")
    person = subject(80, seed=3)
    p = txt2img([{"enabled": True, "foreground": person, "remove_background": True, "extra_outputs": True}], steps=2)
    used = np.array(processing.process_images(p).images[1])
    expected = composite_on_grey(person, predict_alpha(load_rmbg(rmbg_file), person))
    assert np.array_equal(used, resize_and_center_crop(expected, 64, 64)), "the subject was not cut out by RMBG"


def test_remover_dropped_into_the_iclight_folder_is_used_and_not_listed_as_a_model(a1111, rmbg_file, capsys):
    import shutil

    from iclight_a1111.webui import model_folders

    shutil.copy(rmbg_file, a1111.model_dir / "model.safetensors")
    assert "model.safetensors" not in [m.name for m in model_folders.model_files()]
    assert "not listing" not in capsys.readouterr().out
    assert isinstance(model_folders.background_remover(), RmbgNet)
