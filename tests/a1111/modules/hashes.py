"""Mirrors modules/hashes.py (v1.10.1) lines 11-66, `sha256(filename, title)`, with the cache of
modules/cache.py as a dict per subsection (A1111 keeps it in cache.json across restarts).

The cache is keyed by `title` alone and its value reused unless the file's mtime is newer than the
one recorded: a file replaced by one with an older mtime keeps the old hash. The cache is read
before `--no-hashing` is looked at; only a missing value is then left uncomputed (None).
"""
import hashlib
import os.path

from modules import shared

caches = {}


def cache(subsection):
    return caches.setdefault(subsection, {})


def calculate_sha256(filename):
    digest = hashlib.sha256()
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_from_cache(filename, title, use_addnet_hash=False):
    hashes = cache("hashes-addnet") if use_addnet_hash else cache("hashes")
    try:
        ondisk_mtime = os.path.getmtime(filename)
    except FileNotFoundError:
        return None
    if title not in hashes:
        return None
    cached_sha256 = hashes[title].get("sha256", None)
    cached_mtime = hashes[title].get("mtime", 0)
    if ondisk_mtime > cached_mtime or cached_sha256 is None:
        return None
    return cached_sha256


def sha256(filename, title, use_addnet_hash=False):
    hashes = cache("hashes-addnet") if use_addnet_hash else cache("hashes")
    value = sha256_from_cache(filename, title, use_addnet_hash)
    if value is not None:
        return value
    if shared.cmd_opts.no_hashing:
        return None
    value = calculate_sha256(filename)
    hashes[title] = {"mtime": os.path.getmtime(filename), "sha256": value}
    return value
