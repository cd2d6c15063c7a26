"""IC-Light's files in the webui: the model folders, file hashes, downloads, the background remover."""
from __future__ import annotations

from pathlib import Path

from modules import hashes, modelloader, paths, shared

from ..errors import DownloadFailed
from ..images.background_removal import RmbgNet, load_rmbg
from ..progress import task
from ..unet.model_files import (
    MODEL_FOLDER_NAME, OFFICIAL_FILES, RELEASE_URL, RMBG_FILE_NAME, RMBG_FOLDER_NAME, RMBG_URL, ModelFile,
    download_hint, find_model_files, find_rmbg_file, verify_download,
)

BACKGROUND_REMOVER: dict[tuple[str, int], RmbgNet] = {}  # the loaded net, kept in RAM between uses


def model_folders() -> list[Path]:
    """`models/ic-light` and the folder given by `--iclight-dir`, if any."""
    folders = [Path(paths.models_path) / MODEL_FOLDER_NAME]
    extra = getattr(shared.cmd_opts, "iclight_dir", None)
    if extra:
        folders.append(Path(extra))
    return folders


def model_files() -> list[ModelFile]:
    return find_model_files(model_folders())


def file_hash(model: ModelFile) -> str | None:
    """The file's sha256, from A1111's hash cache; None under --no-hashing.

    That cache is keyed by title and trusts any mtime not newer than the one it recorded, so the
    title carries the file's size and mtime: a file replaced by an older one is hashed anew."""
    stat = model.path.stat()
    return hashes.sha256(str(model.path), f"iclight/{model.path.stem}/{stat.st_size}/{stat.st_mtime_ns}") or None


def download_official(name: str) -> ModelFile:
    """Fetch an official IC-Light file with A1111's downloader (progress in the console), verified."""
    folder = model_folders()[0]
    try:
        with task(f"IC-Light: downloading {name}"):
            path = modelloader.load_file_from_url(RELEASE_URL + name, model_dir=str(folder), file_name=name)
    except Exception as e:
        raise DownloadFailed(f"Could not download {name} ({e}). {download_hint(name, folder)}") from e
    return verify_download(Path(path), OFFICIAL_FILES[name])


def background_remover() -> RmbgNet:
    """RMBG-1.4 from models/rmbg (or the IC-Light folders); downloaded with A1111's downloader when missing."""
    rmbg_folder = Path(paths.models_path) / RMBG_FOLDER_NAME
    path = find_rmbg_file([rmbg_folder, *model_folders()])
    if path is None:
        try:
            with task(f"IC-Light: downloading the background remover ({RMBG_FILE_NAME})"):
                path = Path(modelloader.load_file_from_url(RMBG_URL, model_dir=str(rmbg_folder), file_name=RMBG_FILE_NAME))
        except Exception as e:
            raise DownloadFailed(
                f"Background removal needs the RMBG-1.4 model and it could not be downloaded ({e}). "
                f"Download {RMBG_FILE_NAME} from {RMBG_URL} and put it in {rmbg_folder}."
            ) from e
    key = (str(path), path.stat().st_mtime_ns)
    if key not in BACKGROUND_REMOVER:
        BACKGROUND_REMOVER.clear()
        BACKGROUND_REMOVER[key] = load_rmbg(path)
    return BACKGROUND_REMOVER[key]
