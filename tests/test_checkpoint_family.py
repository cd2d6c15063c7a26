"""A checkpoint's family from its file header, and which families share a latent space."""
import pytest
import torch
from safetensors.torch import save_file

from iclight_a1111.unet.checkpoint_family import (
    FIRST_EMBEDDER_KEY, SD1, SD1_KEY, SD2, SD2_KEY, SD3, SD3_KEY, SDXL, SDXL_KEY, family_from_file,
    family_from_shapes, same_latent_space,
)


@pytest.mark.parametrize("key, width, family", [
    (SD1_KEY, 8, SD1),
    (SD2_KEY, 8, SD2),
    (SDXL_KEY, 1280, SDXL),
    (FIRST_EMBEDDER_KEY, 1280, SDXL),  # the SDXL refiner has only the second text encoder
    (FIRST_EMBEDDER_KEY, 1024, SD2),  # SD 2.x Turbo is laid out like SDXL
    (SD3_KEY, 8, SD3),
])
def test_family_is_read_from_the_safetensors_header(tmp_path, key, width, family):
    path = tmp_path / "checkpoint.safetensors"
    save_file({key: torch.zeros(width), "model.diffusion_model.out.2.bias": torch.zeros(4)}, str(path))
    assert family_from_file(path) == family


def test_unknown_layouts_and_pickle_files_have_no_family(tmp_path):
    assert family_from_shapes({"model.diffusion_model.out.2.bias": (4,)}) is None
    pickle = tmp_path / "checkpoint.ckpt"
    torch.save({SD1_KEY: torch.zeros(8)}, pickle)
    assert family_from_file(pickle) is None, "a pickle checkpoint would have to be loaded to tell"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    assert family_from_file(broken) is None


def test_sd1_and_sd2_share_a_latent_space_sdxl_and_sd3_do_not():
    assert same_latent_space(SD1, SD2)
    assert not same_latent_space(SD1, SDXL)
    assert not same_latent_space(SD1, SD3)
    assert same_latent_space(SD1, None), "an unknown family is not refused"
