"""Where IC-Light model files are looked for."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

MODEL_FOLDER_NAME = "ic-light"


def find_model_files(folders: Iterable[str | Path]) -> list[Path]:
    """The `.safetensors` files directly inside `folders` (missing folders are skipped), sorted by name."""
    found: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            for path in folder.glob("*.safetensors"):
                found.setdefault(path.name.lower(), path)
    return [found[name] for name in sorted(found)]
