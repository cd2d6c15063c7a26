"""Test environment: import paths for the stand-ins, one thread, the real ldm forward kept aside.

- `tests/standins` holds a torchvision stand-in (the registry's build for this torch needs CUDA).
  pytorch_lightning (through torchmetrics) decides at import whether torchvision is usable, so it is
  imported before the stand-in is on the path and goes on believing it is absent.
- `tests/a1111` holds stand-ins of the A1111 v1.10.1 `modules.*` the adapter imports.
- k-diffusion's package `__init__` imports its training and evaluation code (clip, clean-fid);
  the package is registered without running it, so `k_diffusion.external` and `.sampling` import
  on their own, as A1111 uses them.
"""
import importlib.util
import sys
import types
from pathlib import Path

import pytorch_lightning  # noqa: F401  (see docstring: must come before the torchvision stand-in)
import torch

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS / "standins"))
sys.path.insert(0, str(TESTS / "a1111"))
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

_kd_spec = importlib.util.find_spec("k_diffusion")
_kd = types.ModuleType("k_diffusion")
_kd.__path__ = list(_kd_spec.submodule_search_locations)
sys.modules.setdefault("k_diffusion", _kd)

torch.set_num_threads(1)

import tiny_models  # noqa: E402,F401  (captures ldm's own UNetModel.forward before any stand-in patches it)


import pytest  # noqa: E402


FIGURE = "iclight_figure"


@pytest.fixture
def report(request):
    """`report(line)`: a measured figure, printed in the summary at the end of the run. It travels with the
    test's report, so that the figures of tests run in other processes (pytest-xdist) are printed too."""
    return lambda line: request.node.user_properties.append((FIGURE, line))


def pytest_terminal_summary(terminalreporter):
    reports = [r for kind in ("passed", "failed") for r in terminalreporter.stats.get(kind, []) if r.when == "call"]
    figures = [value for r in reports for name, value in r.user_properties if name == FIGURE]
    if figures:
        terminalreporter.section("IC-Light figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture
def a1111(tmp_path):
    """A1111 stand-ins around a tiny real LatentDiffusion with fc and fbc files in models/ic-light."""
    from a1111_env import make_env, reset_env

    env = make_env(tmp_path)
    try:
        yield env
    finally:
        reset_env()


@pytest.fixture
def forge(a1111, monkeypatch):
    """A Forge process (the `backend` stand-ins, Forge's engine around the same tiny model, the script loaded
    as Forge loads it) with the same fc and fbc files as the `a1111` fixture."""
    from forge_env import make_forge_env

    return make_forge_env(a1111, monkeypatch)


@pytest.fixture
def lora_networks():
    """The built-in Lora extension's stand-in (its module `networks`), emptied after the test."""
    import networks

    yield networks
    networks.loaded_networks.clear()
    networks.errors.clear()
