"""IC-Light model files: where they are looked for, what each one is, the official downloads."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..images.background_removal import is_rmbg_file
from ..errors import DownloadFailed, ModelFileFault
from .key_table import FIRST_CONV_LDM, sd1_ldm_keys, to_ldm_keys
from .offset_files import PICKLE_SUFFIXES, VARIANTS, header_shapes

MODEL_FOLDER_NAME = "ic-light"
MAX_FILE_NAME = 255  # bytes of a file name on common file systems
RELEASE_URL = "https://huggingface.co/lllyasviel/ic-light/resolve/main/"
RMBG_FOLDER_NAME = "rmbg"
RMBG_FILE_NAME = "model.safetensors"
RMBG_URL = "https://huggingface.co/briaai/RMBG-1.4/resolve/main/model.safetensors"
OFFICIAL_FILES = {
    "iclight_sd15_fc.safetensors": "fc",
    "iclight_sd15_fbc.safetensors": "fbc",
    "iclight_sd15_fcon.safetensors": "fc",
}


@dataclass(frozen=True)
class ModelFile:
    path: Path
    variant: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        """fc, fcon or fbc: fc and fcon have the same tensors, fcon is told by its name."""
        return "fcon" if self.variant == "fc" and "fcon" in self.name.lower() else self.variant

    @property
    def label(self) -> str:
        """Name and what the file is, as the model dropdown shows it."""
        return f"{self.path.name} [{self.kind}]"


def inspect_model_file(path: Path) -> ModelFile:
    """Read only the header: an SD 1.x IC-Light file with a recognisable variant, or `ModelFileFault`."""
    shapes = header_shapes(path)
    if is_rmbg_file(shapes):
        raise ModelFileFault(f"'{path.name}' is the RMBG background removal model, not an IC-Light model.")
    ldm_shapes, _ = to_ldm_keys(shapes)
    if set(ldm_shapes) != set(sd1_ldm_keys()):
        raise ModelFileFault(f"'{path.name}' does not have the keys of an SD 1.x UNet; IC-Light needs SD 1.x models.")
    first_conv = ldm_shapes[FIRST_CONV_LDM]
    if len(first_conv) != 4 or first_conv[1] not in VARIANTS:
        raise ModelFileFault(f"'{path.name}' has a first conv of shape {first_conv}; not an IC-Light model.")
    return ModelFile(path, VARIANTS[first_conv[1]])


def find_model_files(folders: Iterable[str | Path], log: Callable[[str], None] = print) -> list[ModelFile]:
    """IC-Light files directly inside `folders`, sorted by name; files that are not (pickles included)
    are logged with the reason and left out."""
    found: dict[str, ModelFile] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES)):
            if path.name.lower() in found:
                continue
            try:
                found[path.name.lower()] = inspect_model_file(path)
            except ModelFileFault as e:
                if path.suffix.lower() in PICKLE_SUFFIXES or not is_rmbg_file(safe_keys(path)):
                    log(f"IC-Light: not listing {path}: {e}")
    return [found[name] for name in sorted(found)]


def safe_keys(path: Path) -> set[str]:
    try:
        return set(header_shapes(path))
    except ModelFileFault:
        return set()


def find_rmbg_file(folders: Iterable[str | Path]) -> Path | None:
    """The first RMBG-1.4 weights file directly inside `folders` (any file name)."""
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.glob("*.safetensors")):
                if is_rmbg_file(safe_keys(path)):
                    return path
    return None


def default_rank(model: ModelFile) -> int:
    """The reference's preference when no model is named: fc, then fcon, then fbc."""
    if model.variant == "fbc":
        return 2
    return 1 if "fcon" in model.name.lower() else 0


def select_model(files: list[ModelFile], wanted: str) -> ModelFile | None:
    """The file named `wanted` (file name, stem, or dropdown label); when empty, the default model
    (fc before fcon before fbc; by name within each)."""
    if not wanted:
        return min(files, key=default_rank, default=None)
    wanted = wanted.split(" [")[0].strip().lower()
    for f in files:
        if wanted in (f.name.lower(), f.path.stem.lower()):
            return f
    return None


def is_plain_file_name(name: str) -> bool:
    """Whether `name` names a file directly inside a folder: no path, no parent, nothing a file system refuses."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no file has that name
        return False
    return 0 < size <= MAX_FILE_NAME and name not in (".", "..") and not any(c in name for c in "/\\\0")


def verify_download(path: Path, expected_variant: str) -> ModelFile:
    """Check a freshly downloaded official file; a bad one is deleted so it is not listed."""
    try:
        model = inspect_model_file(path)
        if model.variant != expected_variant:
            raise ModelFileFault(f"'{path.name}' is a {model.variant} model, {expected_variant} was expected.")
        return model
    except ModelFileFault as e:
        path.unlink(missing_ok=True)
        raise DownloadFailed(f"The downloaded '{path.name}' failed verification and was deleted: {e}") from e


def download_hint(name: str, folder: Path) -> str:
    return f"Download {name} from {RELEASE_URL}{name} and put it in {folder}."
