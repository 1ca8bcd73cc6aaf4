"""Saved plans: the file `plan --out` writes, how `apply FILE` / `destroy FILE` read it back, and when it is
stale. A saved plan is recognised by its content, carries the digests of the manifest and of every observed
resource, and is refused before any write once the world it was made from has moved (Terraform's "Saved plan
is stale", without a state file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_infra.core.errors import SavedPlanError, StalePlanError
from plexus_infra.plan import FORMAT_VERSION, TOOL, Plan

SAVED_PLAN_MAX_BYTES = 16 * 1024 * 1024

OPERATIONS = ("apply", "destroy")
# What apply reads back from a saved plan, and the JSON type each must have (`observed` is address → digest).
REQUIRED_FIELDS: dict[str, type] = {
    "format_version": str,
    "tool": str,
    "operation": str,
    "environment": str,
    "manifest": str,
    "manifest_digest": str,
    "account": str,
    "region": str,
    "observed_digest": str,
    "observed": dict,
    "resource_changes": list,
}


def saved_plan_document(text: str) -> dict[str, Any] | None:
    """The file's JSON when its content says it is a saved plan (a JSON object whose `tool` is plexus-infra),
    else None: what a file is follows from its content, never from its name. Pure.

    Example: saved_plan_document("version: 1\nenvironment: staging\n") is None
    """
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


def read_saved_plan(text: str, source: str) -> dict[str, Any]:
    """A saved plan's JSON, checked field by field; refuses other files, formats this version cannot read
    (major version differs) and documents missing a field or holding one of the wrong type."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SavedPlanError(f"{source}: not a saved plan (invalid JSON at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        raise SavedPlanError(f"{source}: not a plexus-infra saved plan")
    version = data.get("format_version")
    if not isinstance(version, str):
        raise SavedPlanError(f"{source}: saved plan without a format_version string")
    if version.split(".", 1)[0] != FORMAT_VERSION.split(".", 1)[0]:
        raise SavedPlanError(f"{source}: plan format {version} is not readable by format {FORMAT_VERSION}")
    problems = [_field_problem(data, name, kind) for name, kind in REQUIRED_FIELDS.items()]
    problems = [problem for problem in problems if problem]
    if not problems and data["operation"] not in OPERATIONS:
        problems.append(f"operation {data['operation']!r} is neither apply nor destroy")
    if not problems and not all(isinstance(v, str) for v in data["observed"].values()):
        problems.append("observed must map addresses to digest strings")
    if problems:
        raise SavedPlanError(f"{source}: malformed saved plan: {'; '.join(problems)}; plan again")
    return data


def _field_problem(data: dict[str, Any], name: str, kind: type) -> str:
    if name not in data:
        return f"{name} is missing"
    if not isinstance(data[name], kind):
        return f"{name} must be {_JSON_TYPES[kind]}, not {_json_type(data[name])}"
    return ""


_JSON_TYPES: dict[type, str] = {str: "a string", dict: "an object", list: "an array"}


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "an object"), (list, "an array")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a number"


def operation_article(operation: str) -> str:
    """`an apply`, `a destroy`: the article a plan's operation takes ("it is an apply plan")."""
    return f"{'an' if operation.startswith(tuple('aeiou')) else 'a'} {operation}"


def stale_reasons(saved: dict[str, Any], fresh: Plan) -> list[str]:
    """Why a saved plan no longer describes the world (empty when it still does). Pure."""
    reasons = []
    if saved.get("manifest_digest") != fresh.manifest_digest:
        reasons.append(f"the manifest {fresh.manifest} changed")
    if saved.get("account") != fresh.account:
        reasons.append(f"it was made for account {saved.get('account')}, not {fresh.account}")
    if saved.get("operation") != fresh.operation:
        reasons.append(f"it is {operation_article(str(saved.get('operation')))} plan")
    before = saved.get("observed") or {}
    moved = sorted(a for a, d in fresh.resource_digests if before.get(a) != d)
    if moved:
        reasons.append(f"live state changed for {', '.join(moved)}")
    elif saved.get("observed_digest") != fresh.observed_digest:
        reasons.append("live state changed")
    elif saved.get("resource_changes") != json.loads(json.dumps(fresh.to_json()["resource_changes"])):
        reasons.append("its resource_changes are not what this manifest and live state give (was it edited?)")
    return reasons


def plan_files(path: str | Path) -> tuple[Path, Path]:
    """Where `plan --out FILE` writes: the JSON to FILE, its text beside it with `.txt` in place of FILE's
    suffix (`plan.json` → `plan.txt`, `plan` → `plan.txt`). FILE ending in `.txt` is refused, since the text
    would overwrite the JSON.

    Example: plan_files("out/plan.json") == (Path("out/plan.json"), Path("out/plan.txt"))
    """
    json_path = Path(path)
    if json_path.suffix.lower() == ".txt":
        raise SavedPlanError(
            f"--out {path}: the plan's text rendering goes to the same name with .txt as its suffix, so the JSON "
            f"plan cannot be a .txt file itself; use e.g. --out {json_path.with_suffix('.json')}"
        )
    return json_path, json_path.with_suffix(".txt")


def save_plan(plan: Plan, path: str | Path, text: str) -> tuple[Path, Path]:
    """Write the versioned JSON plan to `path` and `text`, its rendering for people, beside it (`plan_files`):
    what a person reviews and what `apply FILE` applies are the same plan."""
    json_path, text_path = plan_files(path)
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")
        text_path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise SavedPlanError(f"cannot save the plan to {exc.filename or path}: {exc.strerror or exc}") from None
    return json_path, text_path


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan read back for apply: its JSON (checked by `plan.read_saved_plan`) and where it came from.

    `--adopt` is not part of a saved plan: give it again to the apply that takes foreign resources over.
    """

    data: dict[str, Any]
    source: str

    @property
    def manifest(self) -> str:
        """The manifest the plan was made from, as `plan` was given it (relative to where `plan` ran)."""
        manifest = str(self.data["manifest"])
        if not Path(manifest).is_file():
            raise SavedPlanError(
                f"{self.source} was made from {manifest}, which is not found from here "
                f"({Path.cwd()}); apply it from the directory where the plan was made"
            )
        return manifest

    @property
    def operation(self) -> str:
        return str(self.data["operation"])


def load_saved_plan(path: str | Path) -> SavedPlan:
    """Read a plan written by `plan --out`, refusing other files, malformed ones and unreadable format versions."""
    from plexus_infra.core.yamldoc import read_text

    source = str(path)
    text = read_text(source, what="saved plan", max_bytes=SAVED_PLAN_MAX_BYTES)
    return SavedPlan(read_saved_plan(text, source), source)


def saved_plan_at(path: str | Path) -> SavedPlan | None:
    """The saved plan at `path` when the file's content is one (a JSON object whose `tool` is plexus-infra,
    whatever the file is called), else None: the file is a manifest (or missing, which the manifest loader
    reports). A file that claims to be a saved plan but is malformed raises SavedPlanError."""
    from plexus_infra.core.yamldoc import read_text

    source = str(path)
    if not Path(source).is_file():
        return None
    text = read_text(source, what="manifest or saved plan", max_bytes=SAVED_PLAN_MAX_BYTES)
    if saved_plan_document(text) is None:
        return None
    return SavedPlan(read_saved_plan(text, source), source)


def refuse_wrong_operation(saved: SavedPlan, operation: str) -> None:
    """A destroy plan is applied with `destroy FILE`, an apply plan with `apply FILE`: say which, not "stale"."""
    if saved.operation != operation:
        raise SavedPlanError(
            f"{saved.source} is {operation_article(saved.operation)} plan; run plexus-infra {saved.operation} "
            f"{saved.source}"
        )


def refuse_if_stale(saved: SavedPlan, fresh: Plan) -> None:
    """Terraform's "Saved plan is stale", without a state file: compare digests of manifest and live state."""
    reasons = stale_reasons(saved.data, fresh)
    if reasons:
        raise StalePlanError(
            f"Saved plan {saved.source} is stale: {'; '.join(reasons)}. Nothing was changed; plan again."
        )
