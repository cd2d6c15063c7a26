"""Mirrors modules/modelloader.py (v1.10.1) `load_file_from_url`: returns the file if present, else
downloads it with torch.hub. Tests replace `download_url_to_file` (no network here)."""
import os


def download_url_to_file(url, dst, progress=True, hash_prefix=None):
    raise ConnectionError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")


def load_file_from_url(url, *, model_dir, progress=True, file_name=None, hash_prefix=None):
    os.makedirs(model_dir, exist_ok=True)
    if not file_name:
        file_name = os.path.basename(url)
    cached_file = os.path.abspath(os.path.join(model_dir, file_name))
    if not os.path.exists(cached_file):
        download_url_to_file(url, cached_file, progress=progress, hash_prefix=hash_prefix)
    return cached_file
