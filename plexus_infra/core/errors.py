"""Typed errors. Library code raises these; only `cli.main()` turns them into output and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as the input allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlexusError(Exception):
    """Base of every expected failure: printed as one line, exit code 1, no traceback."""


class ManifestError(PlexusError):
    """An input file is unreadable or invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class AwsError(PlexusError):
    """An AWS call failed for a reason the user can act on (names the action and the resource)."""


class ObserveError(AwsError):
    """Reading live state failed; nothing was written."""


class ApplyError(AwsError):
    """A write failed; the writes before it stand and a rerun continues from there."""


class GuardError(PlexusError):
    """A safety guard refused the operation before any write (account, ownership, approval)."""


class StalePlanError(GuardError):
    """A saved plan no longer matches the manifest or the live state it was made from."""


class SavedPlanError(PlexusError):
    """A file given as a saved plan is not one this version can apply: unreadable, malformed, or made for the
    other operation. Raised before any AWS call."""


class LockError(PlexusError):
    """Another run holds the environment's lock."""
