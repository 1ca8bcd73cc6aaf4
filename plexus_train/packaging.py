"""Reproducible tarballs: sourcedir.tar.gz for training jobs and model.tar.gz for endpoints (what goes into
their code is `container.bundle`'s business). Same content, same bytes: sorted names, zero mtimes and owners, no
gzip timestamp, so a tarball's hash changes only when its content does; `tree_digest` tells that without
writing one.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path


def write_tarball(source: Path, target: Path) -> Path:
    """Gzip-tar every file under `source` (names relative to it) into `target`, reproducibly (sorted names,
    zero mtimes, owners and gzip timestamp), streaming: no file is held in memory, whatever its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in packaged_files(source):
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o644
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return target


def packaged_files(source: Path) -> list[Path]:
    """The files `write_tarball` packs from `source`, in archive order."""
    return sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def tree_digest(source: Path) -> str:
    """SHA-256 (hex) of what `write_tarball(source, ...)` would pack: each file's archive name, size and bytes,
    in archive order. Equal digests mean equal tarballs; computing one reads the files but writes nothing.

    Example: `tree_digest(Path("models/demo/topic"))` changes when a retrain rewrites `model.pt`.
    """
    digest = hashlib.sha256()
    for path in packaged_files(source):
        name = path.relative_to(source).as_posix().encode("utf-8", "surrogateescape")
        digest.update(len(name).to_bytes(8, "big") + name + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
