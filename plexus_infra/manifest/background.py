"""Validate a manifest in a forked child while the parent sets up its AWS clients.

Why: validating costs about 60 ms of pure-Python CPU (importing jsonschema is half of it) and creating boto3
clients about as much again; on two cores they can overlap, which is most of what separates a no-op plan from
the least any boto3 tool must spend. The overlap is only an optimisation: without `os.fork`, with more than one
thread alive (forking a threaded process can deadlock the child), or if the child fails in any unexpected way,
validation runs in this process instead, with the same result. The child never talks to AWS, so the rule that
nothing reaches AWS before a manifest validates still holds: the parent creates clients but calls nothing
until `environment()` has returned.
"""

from __future__ import annotations

import os
import pickle
import re
import select
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plexus_infra import environments
from plexus_infra.core.errors import ManifestError
from plexus_infra.manifest.model import Environment

CHILD_TIMEOUT = 30.0
DEFAULT_REGION = environments.DEFAULT_REGION  # a manifest without `region` means this one
_REGION_LINE = re.compile(r"^region:\s*['\"]?([a-z0-9-]+)", re.MULTILINE)


def region_hint(path: str | Path) -> str:
    """The manifest's top-level region at a glance, for creating clients early; validation has the last word
    (a wrong hint costs new clients, never a wrong call)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return DEFAULT_REGION
    match = _REGION_LINE.search(text)
    return match.group(1) if match else DEFAULT_REGION


@dataclass
class PendingValidation:
    """A validation that may be running in a child process; `environment()` waits for its verdict.

    + forked: whether a child is doing the work (False: it was done in this process)
    """

    path: str
    region: str
    forked: bool = False
    _pid: int = 0
    _pipe: int = -1
    _answer: tuple[str, Any] | None = field(default=None, repr=False)

    def environment(self) -> Environment:
        """The validated Environment, or the ManifestError listing every problem."""
        kind, value = self._answer if self._answer is not None else self._wait()
        if kind == "problems":
            raise ManifestError(value)
        if kind == "environment":
            return value
        return _validate_here(self.path)  # the child could not say: do it here, the same way

    def _wait(self) -> tuple[str, Any]:
        chunks = []
        try:
            while select.select([self._pipe], [], [], CHILD_TIMEOUT)[0]:
                chunk = os.read(self._pipe, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            else:
                os.kill(self._pid, 9)  # silent past the timeout: give up on it
        finally:
            os.close(self._pipe)
            os.waitpid(self._pid, 0)
        try:
            answer = pickle.loads(b"".join(chunks))
        except Exception:  # a child that died mid-answer: unreadable by construction
            answer = ("unknown", None)
        self._answer = answer
        return answer


def validate_in_background(path: str | Path) -> PendingValidation:
    """Start validating `path`: in a forked child when that is safe, else right here."""
    path = str(path)
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return _done_here(path)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: validate, answer through the pipe, and leave without running any cleanup
        os.close(read_end)
        try:
            _answer_from_child(path, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    return PendingValidation(path, region_hint(path), forked=True, _pid=pid, _pipe=read_end)


def _answer_from_child(path: str, pipe: int) -> None:
    try:
        answer: tuple[str, Any] = ("environment", _validate_here(path))
    except ManifestError as exc:
        answer = ("problems", exc.problems)
    except BaseException:  # anything else is told by the parent's own run
        answer = ("unknown", None)
    data = pickle.dumps(answer)
    while data:
        data = data[os.write(pipe, data) :]


def _done_here(path: str) -> PendingValidation:
    try:
        environment = _validate_here(path)
    except ManifestError as exc:
        return PendingValidation(path, DEFAULT_REGION, _answer=("problems", exc.problems))
    return PendingValidation(path, environment.region, _answer=("environment", environment))


def _validate_here(path: str) -> Environment:
    from plexus_infra.manifest.validate import load_environment

    return load_environment(path)
