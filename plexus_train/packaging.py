"""The code that ships to SageMaker: the *same* plexus_train package, plus the one shim script SageMaker runs.

Training jobs get `sourcedir.tar.gz` (entry `train.py`); model archives get `code/` (entry `inference.py`).
Both carry `requirements.txt`, which the framework containers install first. Tarballs are byte-for-byte
reproducible (sorted names, zero mtimes) so their hashes only change when their content does.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONTAINER_DIR = PACKAGE_DIR / "container"
TRAINING_ENTRY = "train.py"
INFERENCE_ENTRY = "inference.py"
REQUIREMENTS = "requirements.txt"
# plexus_infra contributes only its error types, which plexus_train raises everywhere.
SHARED_MODULES = ("__init__.py", "core/__init__.py", "core/errors.py")


def code_files(entry: str) -> dict[str, Path]:
    """Archive name → source file for a code bundle whose entry script is `entry`."""
    import plexus_infra

    files = {entry: CONTAINER_DIR / entry, REQUIREMENTS: CONTAINER_DIR / REQUIREMENTS}
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json", ".txt"):
            files[f"plexus_train/{path.relative_to(PACKAGE_DIR).as_posix()}"] = path
    infra = Path(plexus_infra.__file__).resolve().parent
    for name in SHARED_MODULES:
        files[f"plexus_infra/{name}"] = infra / name
    return files


def requirements(installed: str | None = None) -> str:
    """requirements.txt for the framework containers: transformers pinned to the major version installed here
    (the one that trains and saves the artifacts), else to the one this code is written for. The container's
    own torch is kept: it is never listed.

    Example: `requirements("5.1.0").splitlines()[0] == "transformers>=5,<6"`
    """
    if installed is None:
        try:
            installed = metadata.version("transformers")
        except metadata.PackageNotFoundError:
            installed = None
    lines = (CONTAINER_DIR / REQUIREMENTS).read_text(encoding="utf-8").splitlines()
    if installed:
        major = int(installed.split(".")[0])
        lines = [f"transformers>={major},<{major + 1}" if line.startswith("transformers") else line for line in lines]
    return "\n".join(lines) + "\n"


def copy_code(destination: Path, entry: str) -> None:
    """Write the code bundle into `destination` (created if needed)."""
    for name, source in code_files(entry).items():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == REQUIREMENTS:
            target.write_text(requirements(), encoding="utf-8")
        else:
            shutil.copyfile(source, target)


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
