"""Every IC-Light refusal reaches the caller (A1111's ScriptRunner swallows hook exceptions) and
leaves the checkpoint untouched, with no UNet left active."""
import base64

import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.errors import IcLightError, IcLightFault
from tiny_models import parameter_fingerprint, random_offsets, write_offsets


def no_model_files(a1111):
    for f in a1111.model_dir.iterdir():
        f.unlink()
    return txt2img([{"enabled": True, "foreground": subject()}])


def missing_named_model(a1111):
    return txt2img([{"enabled": True, "model": "iclight_sd15_fcx.safetensors", "foreground": subject()}])


def txt2img_without_foreground(a1111):
    return txt2img([{"enabled": True}])


def img2img_without_subject(a1111):
    return img2img([{"enabled": True}], [None])


def fbc_without_background(a1111):
    return txt2img([{"enabled": True, "model": "iclight_sd15_fbc", "foreground": subject()}])


def corrupt_upload(a1111):
    not_an_image = base64.b64encode(b"\x89PNG\r\n\x1a\n but not really an image").decode()
    return txt2img([{"enabled": True, "foreground": not_an_image}])


def gif_upload(a1111):
    return txt2img([{"enabled": True, "foreground": base64.b64encode(b"GIF89a and the rest of a GIF").decode()}])


def invalid_base64(a1111):
    return txt2img([{"enabled": True, "foreground": "data:image/png;base64,***not base64***"}])


def sdxl_checkpoint(a1111):
    from test_checkpoint_integrity import sdxl_like_unet

    a1111.sd_model.model.diffusion_model = sdxl_like_unet()
    return txt2img([{"enabled": True, "foreground": subject()}])


def model_with_wrong_keys(a1111):
    offsets = random_offsets(a1111.unet, 8, seed=3)
    del offsets["middle_block.1.proj_out.bias"]
    write_offsets(a1111.model_dir / "broken_relight.safetensors", offsets, "ldm")
    return txt2img([{"enabled": True, "model": "broken_relight.safetensors", "foreground": subject()}])


def model_failing_validation(a1111):
    offsets = random_offsets(a1111.unet, 8, seed=3)
    offsets["out.2.weight"] = offsets["out.2.weight"][:, :16].clone()
    write_offsets(a1111.model_dir / "misshaped_relight.safetensors", offsets, "ldm")
    return txt2img([{"enabled": True, "model": "misshaped_relight.safetensors", "foreground": subject()}])


def unknown_light(a1111):
    return img2img([{"enabled": True, "light": "Sideways"}], [pil(subject())])


def custom_light_without_map(a1111):
    return img2img([{"enabled": True, "light": "Custom"}], [pil(subject())])


def background_removal_requested(a1111):
    return txt2img([{"enabled": True, "foreground": subject(), "remove_background": True}])


def enabled_not_a_boolean(a1111):
    return txt2img([{"enabled": "yes", "foreground": subject()}])


def positional_enabled_as_a_number(a1111):
    return txt2img([1, "", "Left", subject()])


def pickle_model_selected(a1111):
    import torch

    torch.save({"conv_in.weight": torch.zeros(1)}, a1111.model_dir / "iclight_sd15_fc.ckpt")
    return txt2img([{"enabled": True, "model": "iclight_sd15_fc.ckpt", "foreground": subject()}])


def reinforce_with_an_opaque_photo(a1111):
    opaque = np.dstack([subject(), np.full((64, 64), 255, np.uint8)])  # what the img2img box sends for a photo
    return img2img([{"enabled": True, "reinforce_foreground": True}], [Image.fromarray(opaque)])


def latent_upscaler_into_sdxl(a1111):
    a1111.add_checkpoint("sdxl-finish", seed=5, config="sdxl")
    return txt2img([{"enabled": True, "foreground": subject()}], enable_hr=True, hr_checkpoint_name="sdxl-finish")


def iclight_on_in_an_sdxl_hires_pass(a1111):
    a1111.add_checkpoint("sdxl-finish", seed=5, config="sdxl")
    return txt2img([{"enabled": True, "foreground": subject(), "hires_pass": "On"}], enable_hr=True,
                   hr_checkpoint_name="sdxl-finish", hr_upscaler="Lanczos")


def sdxl_refiner(a1111):
    a1111.add_checkpoint("sdxl-refiner", seed=5, config="sdxl")
    return txt2img([{"enabled": True, "foreground": subject()}], refiner_checkpoint="sdxl-refiner", refiner_switch_at=0.8)


def inpaint_only_masked(a1111):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    return img2img([{"enabled": True}], [pil(subject())], mask=mask, inpaint_full_res=True)


# What each refusal says, and its HTTP status: 4xx the request's fault, 5xx the server's.
CASES = {
    "no model file (offline)": (no_model_files, r"Could not download iclight_sd15_fc\.safetensors.*"
                                r"https://huggingface\.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fc\.safetensors.*ic-light"),
    "named model missing": (missing_named_model, r"'iclight_sd15_fcx\.safetensors' was not found \(available: "),
    "txt2img without foreground": (txt2img_without_foreground, "needs a foreground"),
    "img2img without subject": (img2img_without_subject, "needs a subject"),
    "fbc without background": (fbc_without_background, "fbc IC-Light model needs a background"),
    "corrupt upload": (corrupt_upload, "'foreground': the data is not a readable PNG image"),
    "GIF upload": (gif_upload, "'foreground' is in GIF format; only PNG, JPEG or WebP images are accepted"),
    "invalid base64": (invalid_base64, "'foreground': the string is not valid base64"),
    "SDXL checkpoint": (sdxl_checkpoint, r"SD 1\.x checkpoints only \(this one is an SDXL checkpoint\)"),
    "model with wrong keys": (model_with_wrong_keys, r"'broken_relight\.safetensors' does not have the keys of an SD 1\.x UNet"),
    "model failing validation": (model_failing_validation, r"does not fit.*wrong shapes: out\.2\.weight \(4, 16, 3, 3\)"),
    "unknown light name": (unknown_light, "'light' must be one of Left, Right, Top, Bottom, Top Left, .*, Ambient, None, Custom; got 'Sideways'"),
    "custom light without a map": (custom_light_without_map, "no light map was given"),
    "enabled that is not a boolean": (enabled_not_a_boolean, "'enabled' must be true or false, got 'yes'"),
    "positional enabled as a number": (positional_enabled_as_a_number, "'enabled' must be true or false, got 1"),
    "a pickle model file selected": (pickle_model_selected, r"'iclight_sd15_fc\.ckpt' is a pickle file.*arbitrary code"),
    "reinforce foreground with a fully opaque photo": (reinforce_with_an_opaque_photo, "'Reinforce foreground' needs to know where"),
    "latent upscaler into an SDXL hires checkpoint": (
        latent_upscaler_into_sdxl, r"Hires upscaler 'Latent' hands the relit SD 1\.5 latents to the hires checkpoint "
        r"sdxl-finish, an SDXL checkpoint.*Choose a pixel upscaler as Upscaler \(R-ESRGAN 4x\+, or Lanczos\)"),
    "IC-Light on in an SDXL hires pass": (
        iclight_on_in_an_sdxl_hires_pass, r"IC-Light 'Hires pass: On' merges.*sdxl-finish is an SDXL checkpoint.*"
        r"Set IC-Light's 'Hires pass' to Automatic or Off"),
    "SDXL refiner": (sdxl_refiner, r"The refiner sdxl-refiner is an SDXL checkpoint.*Choose an SD 1\.x or SD 2\.x refiner"),
    "inpaint only masked": (inpaint_only_masked, "'Inpaint area: Only masked' crops it"),
    "background removal without its model (offline)": (
        background_removal_requested,
        r"needs the RMBG-1\.4 model.*Temporary failure.*model\.safetensors from "
        r"https://huggingface\.co/briaai/RMBG-1\.4/resolve/main/model\.safetensors and put it in .*models/rmbg"),
}


STATUS = {"no model file (offline)": 502, "model with wrong keys": 500, "model failing validation": 500,
          "a pickle model file selected": 500, "background removal without its model (offline)": 502}


@pytest.mark.parametrize("case", list(CASES))
def test_refusal_reaches_the_caller_and_changes_nothing(a1111, case):
    from modules import processing, scripts, sd_unet

    make_p, message = CASES[case]
    p = make_p(a1111)
    unet = a1111.sd_model.model.diffusion_model
    before = parameter_fingerprint(unet)
    scripts.reported_errors.clear()
    with pytest.raises((IcLightError, IcLightFault), match=message) as refused:
        processing.process_images(p)
    assert refused.value.status_code == STATUS.get(case, 400), f"{case}: status {refused.value.status_code}"
    assert not scripts.reported_errors, f"an exception was swallowed by the ScriptRunner: {scripts.reported_errors}"
    assert sd_unet.current_unet is None, "a UNet was left active after the refusal"
    assert parameter_fingerprint(unet) == before, "checkpoint weights changed by a refused generation"


def test_disabled_iclight_ignores_its_arguments_entirely(a1111):
    from modules import processing

    p = txt2img([{"enabled": False, "foreground": "***not base64***"}], steps=2)
    processing.process_images(p)
    assert not any(k.startswith("IC-Light") for k in p.extra_generation_params)


def test_exception_during_sampling_propagates_and_restores_the_checkpoint(a1111):
    from modules import processing, sd_unet

    unet = a1111.sd_model.model.diffusion_model
    before = parameter_fingerprint(unet)
    calls = []

    def fail_on_third_call(module, args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("CUDA out of memory (simulated)")

    hook = unet.middle_block.register_forward_pre_hook(fail_on_third_call)
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            processing.process_images(txt2img([{"enabled": True, "foreground": subject()}], steps=4))
    finally:
        hook.remove()
    assert sd_unet.current_unet is None
    assert parameter_fingerprint(unet) == before


def test_checkpoint_reloaded_mid_generation_is_an_error_not_a_plain_image(a1111):
    """A1111 deactivates the current SdUnet before reloading weights (sd_models.reload_model_weights)."""
    from modules import processing, sd_unet

    calls = []

    def reload_on_second_call(module, args):
        calls.append(1)
        if len(calls) == 2:
            sd_unet.apply_unet("None")

    hook = a1111.unet.time_embed.register_forward_pre_hook(reload_on_second_call)
    try:
        with pytest.raises(IcLightFault, match="switched off during this generation"):
            processing.process_images(txt2img([{"enabled": True, "foreground": subject()}], steps=4))
    finally:
        hook.remove()
