"""A Forge-like process around a real tiny ldm model: the `backend` stand-ins (tests/forge), A1111's `modules`
stand-ins for what Forge kept of A1111, `sd_models.forge_model_reload` (what tells the extension it runs on
Forge) and the IC-Light script loaded as the webui loads it, so that it picks its Forge host."""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent
FORGE_STANDINS = TESTS / "forge"
SCRIPT_PATH = TESTS.parent / "scripts" / "iclight.py"
SCRIPT = {}  # the script module loaded for Forge, once


def use_forge_standins() -> None:
    if str(FORGE_STANDINS) not in sys.path:
        sys.path.insert(0, str(FORGE_STANDINS))


class ForgeModelData:
    """Forge's `SdModelData` (modules/sd_models.py 395-407): the one model loaded, no `loaded_sd_models`."""

    def __init__(self, sd_model: Any) -> None:
        self.sd_model, self.forge_loading_parameters, self.forge_hash = sd_model, {}, ""

    def get_sd_model(self) -> Any:
        return self.sd_model

    def set_sd_model(self, value: Any) -> None:
        self.sd_model = value


@dataclass
class ForgeEnv:
    engine: Any
    a1111: Any  # the A1111 env the engine's weights and model files come from
    script: Any

    @property
    def model_dir(self) -> Path:
        return self.a1111.model_dir

    @property
    def unet(self):
        """The UNet inside Forge's patcher (ldm names)."""
        return self.engine.forge_objects_original.unet.model.diffusion_model


def forge_script(monkeypatch) -> Any:
    """scripts/iclight.py as Forge loads it: the host chosen then is Forge's."""
    from modules import sd_models

    from iclight_a1111.webui import backend_choice

    if "module" not in SCRIPT:
        monkeypatch.setattr(backend_choice, "HOSTS", [])
        spec = importlib.util.spec_from_file_location("iclight_forge_script", SCRIPT_PATH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert type(module.HOST).__name__ == "ForgeHost", f"on Forge the script chose {type(module.HOST).__name__}"
        SCRIPT["module"] = module
    assert hasattr(sd_models, "forge_model_reload")
    return SCRIPT["module"]


def make_forge_env(a1111_env, monkeypatch) -> ForgeEnv:
    from modules import sd_models, shared

    use_forge_standins()
    from backend import memory_management
    from backend.patcher import lora
    from forge_flow import ForgeEngine

    engine = ForgeEngine(a1111_env.sd_model, getattr(a1111_env.sd_model, "sd_checkpoint_info", None))
    monkeypatch.setattr(shared, "sd_model", engine)
    monkeypatch.setattr(sd_models, "forge_model_reload", lambda: (shared.sd_model, False), raising=False)
    monkeypatch.setattr(sd_models, "model_data", ForgeModelData(engine))
    memory_management.current_loaded_models.clear()
    lora.MERGES.clear()
    return ForgeEnv(engine, a1111_env, forge_script(monkeypatch))


def forge_runner(env: ForgeEnv):
    from modules.scripts import ScriptRunner

    from iclight_a1111.generation.params import PARAMS

    script = env.script.IcLightScript()
    script.filename = str(SCRIPT_PATH)
    script.args_from, script.args_to = 0, len(PARAMS)
    return ScriptRunner([script])


def forge_txt2img(env: ForgeEnv, args, batch_size=1, **kwargs):
    from forge_flow import ForgeTxt2Img
    from generation_harness import embeddings

    cond, uncond = embeddings(batch_size)
    return ForgeTxt2Img(cond=cond, uncond=uncond, batch_size=batch_size, scripts=forge_runner(env), script_args=tuple(args),
                        **kwargs)


def forge_img2img(env: ForgeEnv, args, init_images, batch_size=1, **kwargs):
    from forge_flow import ForgeImg2Img
    from generation_harness import embeddings

    cond, uncond = embeddings(batch_size)
    return ForgeImg2Img(cond=cond, uncond=uncond, batch_size=batch_size, scripts=forge_runner(env), script_args=tuple(args),
                        init_images=init_images, **kwargs)
