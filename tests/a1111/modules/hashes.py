"""Mirrors modules/hashes.py (v1.10.1) lines 41-66, `sha256(filename, title)`: the file's full sha256 as hex (A1111
caches it by title and mtime; the stand-in just computes it), and None under `--no-hashing`."""
import hashlib

from modules import shared


def sha256(filename, title, use_addnet_hash=False):
    if shared.cmd_opts.no_hashing:
        return None
    digest = hashlib.sha256()
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
