"""The diffusers -> ldm key table covers the SD 1.5 UNet exactly and agrees with diffusers' converter."""
import torch
from diffusers import UNet2DConditionModel
from ldm.modules.diffusionmodules.openaimodel import UNetModel

from iclight_a1111.unet.key_table import diffusers_to_ldm
from tiny_models import SD15_UNET, diffusers_config, to_diffusers_state


def test_table_has_one_row_per_sd15_unet_parameter():
    table = diffusers_to_ldm()
    with torch.device("meta"):
        ldm_keys = list(UNetModel(**SD15_UNET).state_dict())
        diffusers_keys = set(UNet2DConditionModel(**diffusers_config(SD15_UNET)).state_dict())
    assert len(table) == 686, f"table has {len(table)} rows, the SD 1.5 UNet has 686 parameters"
    assert list(table.values()) == ldm_keys, "ldm column is not exactly the ldm UNetModel's keys, in order"
    assert set(table) == diffusers_keys, f"diffusers column differs: {sorted(set(table) ^ diffusers_keys)[:5]}"


def test_table_agrees_with_diffusers_converter_on_every_key():
    table = diffusers_to_ldm()
    tagged = {ldm_key: torch.tensor([float(i)]) for i, ldm_key in enumerate(table.values())}
    converted = to_diffusers_state(tagged, SD15_UNET)
    wrong = [d for d, l in table.items() if not torch.equal(converted[d], tagged[l])]
    assert not wrong, f"diffusers' converter maps these keys elsewhere: {wrong[:5]}"
