"""Checkpoints at each epoch's end, so an interrupted job (a managed spot interruption, a killed local run) resumes at
the next epoch instead of starting over.

A checkpoint holds everything the rest of the run depends on: weights, optimizer and scheduler state, the
early-stopping state (best loss, best weights, epochs without improvement), the history so far, and every RNG
the loop draws from (the shuffling Random and torch's, per rank), so a resumed run continues exactly as the
uninterrupted one would have. It is written to a temporary name and renamed (atomic on one file system), so a
kill mid-write leaves the previous checkpoint whole; SageMaker syncs the directory (CheckpointConfig.LocalPath) to
S3 and restores it into a restarted job. A checkpoint of another run (other data, settings or world size: its
`fingerprint`) or one that cannot be read is passed over with a warning, and training starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


def fingerprint(texts: Sequence[str], labels: Sequence[str], settings: dict[str, Any], world_size: int) -> str:
    """What makes two runs the same run: their data, their settings and their world size (SHA-256, hex)."""
    digest = hashlib.sha256(json.dumps([settings, world_size], sort_keys=True, default=str).encode("utf-8"))
    for text, label in zip(texts, labels, strict=True):
        digest.update(json.dumps([text, label]).encode("utf-8"))
    return digest.hexdigest()


def checkpoint_path(directory: Path, epoch: int) -> Path:
    return directory / f"checkpoint-{epoch}.pt"


def newest(directory: Path) -> Path | None:
    """The checkpoint of the latest epoch in `directory`, None when there is none."""
    found = [(int(m.group(1)), p) for p in directory.glob("checkpoint-*.pt") if (m := NAME.match(p.name))]
    return max(found)[1] if found else None


def save(directory: Path, epoch: int, state: dict[str, Any]) -> Path:
    """Write `state` as the checkpoint of `epoch` atomically (temporary name, then rename), then drop older ones."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(directory, epoch)
    temporary = directory / f".{target.name}.tmp"
    torch.save({"format": FORMAT, "epoch": epoch, **state}, temporary)
    os.replace(temporary, target)
    for older in directory.glob("checkpoint-*.pt"):
        match = NAME.match(older.name)
        if match and int(match.group(1)) < epoch:
            older.unlink(missing_ok=True)
    return target


def load(directory: Path | None, expected: str) -> dict[str, Any] | None:
    """The newest checkpoint in `directory` when it belongs to this run (`expected` fingerprint); else None, with
    a warning on stderr when there was one that could not be used."""
    import torch

    path = newest(directory) if directory is not None and directory.is_dir() else None
    if path is None:
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        return _passed_over(path, f"cannot be read ({' '.join(str(exc).split())[:160] or type(exc).__name__})")
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("epoch"), int):
        return _passed_over(path, "is not a checkpoint of this format")
    if state.get("fingerprint") != expected:
        return _passed_over(path, "is from another run (other data, settings or number of processes)")
    return state


def _passed_over(path: Path, why: str) -> None:
    print(f"warning: checkpoint {path} {why}; training starts over", file=sys.stderr, flush=True)
    return None
