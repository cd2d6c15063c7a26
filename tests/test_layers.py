"""The house rules, read from the code: layers import one way only, only the webui layer (and the
scripts the webui loads) imports the webui's `modules.*`, only the forge layer imports Forge's own
`backend` (and `modules_forge`), files and functions stay short."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = "iclight_a1111"
# Each layer may import the layers listed for it; `errors` and `progress` are for every layer.
BASE = {"errors", "progress"}
MAY_IMPORT = {
    "images": BASE | {"images"},
    "unet": BASE | {"images", "unet"},
    "generation": BASE | {"images", "unet", "generation"},
    "forge": BASE | {"images", "unet", "generation", "forge"},
    "webui": BASE | {"images", "unet", "generation", "forge", "webui"},
}
FORGE_PACKAGES = ("backend", "modules_forge")
# Tools that run inside a webui install, on its own code (the parity check on Forge's real UNet): they import
# the webui's modules and Forge's backend as a webui script does.
IN_WEBUI_TOOLS = ("tools/forge_parity.py",)
MAX_FILE_LINES = 250
MAX_FUNCTION_LINES = 60


def python_files(*roots: str) -> list[Path]:
    return sorted(f for r in roots for f in ((ROOT / r).rglob("*.py") if (ROOT / r).is_dir() else [ROOT / r]))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative imports resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            # `from pkg import module` imports that module.
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


def layer_violations(files: list[Path], root: Path = ROOT) -> list[str]:
    problems = []
    for path in files:
        layer = layer_of(module_name(path, root))
        for line, target in imported_modules(path, root):
            where = f"{path.relative_to(root)}:{line} imports {target}"
            if target == "modules" or target.startswith("modules."):
                if layer != "webui":
                    problems.append(f"{where}: only {PACKAGE}.webui may import the webui's modules.*")
            elif target.split(".")[0] in FORGE_PACKAGES:
                if layer != "forge":
                    problems.append(f"{where}: only {PACKAGE}.forge may import Forge's {target.split('.')[0]}")
            elif layer in MAY_IMPORT and layer_of(target) not in (None, *MAY_IMPORT[layer]):
                problems.append(f"{where}: the {layer} layer may import only {sorted(MAY_IMPORT[layer])}")
    return problems


def test_every_module_of_the_package_belongs_to_a_layer():
    loose = [module_name(f) for f in python_files(PACKAGE)
             if layer_of(module_name(f)) not in (None, *MAY_IMPORT, *BASE)]
    assert not loose, f"modules outside the layers {sorted(MAY_IMPORT)} and the base {sorted(BASE)}: {loose}"


def test_layers_import_downward_only_and_only_webui_imports_a1111_and_only_forge_imports_forge():
    files = [f for f in python_files(PACKAGE, "benchmarks", "tools", "preload.py") if str(f.relative_to(ROOT)) not in IN_WEBUI_TOOLS]
    problems = layer_violations(files)
    assert not problems, "import rule broken:\n" + "\n".join(problems)


def test_the_rule_catches_an_upward_import_and_a1111_or_forge_outside_their_layers(tmp_path):
    """The checker itself: a planted upward import, a planted `modules` import and a planted `backend` import
    are each reported."""
    fake_root = tmp_path / "root"
    for rel, text in {
        f"{PACKAGE}/__init__.py": "",
        f"{PACKAGE}/images/__init__.py": "",
        f"{PACKAGE}/images/bad.py": "from ..generation import job\nfrom modules import shared\nfrom backend import utils\n",
        f"{PACKAGE}/forge/__init__.py": "",
        f"{PACKAGE}/forge/ok.py": "from backend import memory_management\nfrom ..generation import job\n",
        f"{PACKAGE}/forge/bad.py": "from ..webui import ok\n",
        f"{PACKAGE}/generation/__init__.py": "",
        f"{PACKAGE}/generation/job.py": "",
        f"{PACKAGE}/webui/ok.py": "from modules import shared\nfrom ..generation import job\n",
    }.items():
        (fake_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake_root / rel).write_text(text)
    problems = layer_violations(sorted((fake_root / PACKAGE).rglob("*.py")), fake_root)
    assert len(problems) == 4 and sum("images/bad.py" in p for p in problems) == 3, problems
    assert any("forge/bad.py" in p and "webui" in p for p in problems), problems


def test_files_and_functions_stay_short():
    long_files, long_functions = [], []
    for path in python_files(PACKAGE, "scripts", "benchmarks", "tools", "preload.py", "install.py"):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(ROOT)} ({len(source.splitlines())} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= MAX_FUNCTION_LINES:
                long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long_files, f"files over {MAX_FILE_LINES} lines (one job per file): {long_files}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"
