"""The CI step: branch → environment → validate → plan (saved as artifacts) → apply exactly that saved plan.

Any CI system runs the same command, `plexus-infra ci`; only where the branch name comes from differs.
The apply goes through the saved-plan path (`engine.converge` with the plan read back from the artifact),
so a world that moved between plan and apply is refused, and the environment's lock keeps two pipelines
from interleaving.

Example:
    branch, source = detect_branch(None, os.environ)
    target = choose_target(branch, source, env=None, mode=Mode.APPLY, branch_map=branch_map())
    result = run(target, "environments/production.yaml", artifacts=Path("plan-artifacts"))
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from plexus_infra.core.errors import GuardError, ManifestError, PlexusError, Problem
from plexus_infra.engine import NO_HOOKS, Hooks, Outcome, converge, make_plan, open_session
from plexus_infra.fleet import Entry, open_fleet, plan_fleet
from plexus_infra.plan import Plan
from plexus_infra.saved_plan import load_saved_plan, save_plan

# The one place that says which branch deploys where. A repository overrides it with BRANCHES_FILE.
BRANCH_ENVIRONMENTS: dict[str, str] = {"main": "production", "staging": "staging"}
BRANCHES_FILE = Path("environments/branches.yaml")
# Where a branch that deploys nowhere is planned against, unless --env says otherwise.
DEFAULT_ENVIRONMENT = "development"
# CI variables that name the branch, in the order they are consulted (GitHub, CodeBuild, GitLab).
BRANCH_VARIABLES = ("GITHUB_REF_NAME", "CODEBUILD_WEBHOOK_HEAD_REF", "CODEBUILD_SOURCE_VERSION", "CI_COMMIT_BRANCH")
PLAN_FILE = "plan.json"
REPORT_FILE = "report.md"

_COMMIT_ID = re.compile(r"[0-9a-f]{7,40}")


class Mode(StrEnum):
    """What a CI run does: apply a deploy branch, plan only (pull requests), or check for drift (nightly)."""

    APPLY = "apply"
    PLAN_ONLY = "plan-only"
    DRIFT_CHECK = "drift-check"


@dataclass(frozen=True)
class Target:
    """Where a CI run points and why.

    + branch / branch_source: the branch and what named it (`--branch`, a CI variable, `git`), None if unknown
    + environment: the environment name, whose manifest is environments/NAME.yaml
    + mode: what the run does
    + reason: one sentence for the log, e.g. `main deploys to production`
    """

    branch: str | None
    branch_source: str
    environment: str
    mode: Mode
    reason: str


def branch_name(value: str | None) -> str | None:
    """A branch from a CI variable: `refs/heads/main` → `main`; commit ids, `pr/12` and a detached `HEAD`
    (CodeBuild's CODEBUILD_SOURCE_VERSION may be any of them) name no branch."""
    value = (value or "").strip()
    value = value.removeprefix("refs/heads/")
    if not value or value == "HEAD" or value.startswith(("pr/", "refs/")) or _COMMIT_ID.fullmatch(value):
        return None
    return value


def git_branch(cwd: Path | None = None) -> str | None:
    """The checked-out branch according to git, None when detached or outside a repository."""
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True, cwd=cwd, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return branch_name(answer.stdout) if answer.returncode == 0 else None


def detect_branch(
    explicit: str | None,
    environ: Mapping[str, str],
    git: Callable[[], str | None] = git_branch,
) -> tuple[str | None, str]:
    """(branch, what named it): `--branch`, else the first CI variable that names a branch, else git."""
    if explicit:
        return branch_name(explicit) or explicit, "--branch"
    for variable in BRANCH_VARIABLES:
        branch = branch_name(environ.get(variable))
        if branch:
            return branch, variable
    branch = git()
    return (branch, "git") if branch else (None, "unknown")


def branch_map(path: Path = BRANCHES_FILE) -> dict[str, str]:
    """BRANCH_ENVIRONMENTS, or the repository's own `branch: environment` mapping when `path` exists."""
    if not path.exists():
        return dict(BRANCH_ENVIRONMENTS)
    import yaml

    from plexus_infra.core.yamldoc import read_text

    try:
        data = yaml.safe_load(read_text(path, what="branch map"))
    except yaml.YAMLError as exc:
        raise ManifestError([Problem(str(path), None, None, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ManifestError([Problem(str(path), None, None, "", "must map branch names to environment names")])
    return data


def choose_target(
    branch: str | None,
    branch_source: str,
    *,
    env: str | None,
    mode: Mode,
    branch_map: Mapping[str, str],
) -> Target:
    """Which environment a run points at and what it may do there. Only a deploy branch applies; `--env`
    picks the environment for plan-only and drift runs but cannot redirect a deploy branch."""
    deploys_to = branch_map.get(branch) if branch else None
    if mode is Mode.APPLY and deploys_to is None:
        named = f"branch {branch}" if branch else "the branch (unknown)"
        environment = env or DEFAULT_ENVIRONMENT
        deploy_branches = ", ".join(f"{b} → {e}" for b, e in sorted(branch_map.items())) or "none"
        reason = f"{named} deploys nowhere (deploy branches: {deploy_branches}): plan only against {environment}"
        return Target(branch, branch_source, environment, Mode.PLAN_ONLY, reason)
    if mode is Mode.APPLY:
        if env and env != deploys_to:
            raise PlexusError(
                f"branch {branch} deploys to {deploys_to}; --env {env} contradicts it (see {BRANCHES_FILE})"
            )
        return Target(branch, branch_source, deploys_to, mode, f"branch {branch} deploys to {deploys_to}")
    environment = env or deploys_to or DEFAULT_ENVIRONMENT
    return Target(branch, branch_source, environment, mode, f"{mode.value} against {environment}")


@dataclass(frozen=True)
class Result:
    """What a CI run found and did.

    + plan: the plan made at the start (the one saved as artifacts)
    + artifacts: the files written (plan.json, plan.txt)
    + outcome: the apply's outcome; None when the mode does not apply
    """

    target: Target
    plan: Plan
    artifacts: tuple[Path, ...]
    outcome: Outcome | None = None


def run(
    target: Target,
    manifest: str,
    *,
    artifacts: Path,
    text: Callable[[Plan], str],
    report: Callable[[Plan], str] | None = None,
    profile: str | None = None,
    lock_timeout: float = 0.0,
    show_plan: Callable[[Plan], None] | None = None,
    hooks: Hooks = NO_HOOKS,
    allow_data_loss: bool = False,
) -> Result:
    """validate → plan → save the plan as artifacts (`text` renders plan.txt, `report` report.md) → (APPLY only)
    apply that saved plan, refusing a stale one, and one that can lose data in a retained environment."""
    session = open_session(manifest, profile)
    plan, _ = make_plan(session, "apply")
    saved = save_plan(plan, artifacts / PLAN_FILE, text(plan))
    if report is not None:
        saved = (*saved, save_text(artifacts / REPORT_FILE, report(plan)))
    if show_plan:
        show_plan(plan)
    result = Result(target, plan, saved)
    json_path = saved[0]
    if target.mode is not Mode.APPLY:
        return result
    refuse_data_loss(plan.environment, plan.data_loss, session.env.removal_policy, allow_data_loss)
    outcome = converge(session, "apply", saved=load_saved_plan(json_path), lock_timeout=lock_timeout, hooks=hooks)
    return Result(target, plan, result.artifacts, outcome)


def refuse_data_loss(environment: str, losses: tuple[str, ...], removal_policy: str, allowed: bool) -> None:
    """A plan that can lose data (plexus_infra.data_safety) is not applied by CI to a retained environment, whose
    data is what retaining it is for, unless a person said --allow-data-loss."""
    if losses and removal_policy == "retain" and not allowed:
        more = f" (and {len(losses) - 1} more)" if len(losses) > 1 else ""
        raise GuardError(
            f"the plan for {environment} can lose data: {losses[0]}{more}; nothing was applied. Review the plan, "
            "then rerun with --allow-data-loss to apply it"
        )


def plan_all(
    manifests: list[str],
    *,
    artifacts: Path,
    text: Callable[[Plan], str],
    report: Callable[[list[Entry]], str],
    profile: str | None = None,
) -> list[Entry]:
    """`ci --plan-only --all`: every environment planned (fleet), each plan saved under artifacts/ENV/, and one
    report (artifacts/report.md) of them all."""
    entries, _ = open_fleet(manifests, profile)
    entries = plan_fleet(entries)
    for entry in entries:
        if entry.plan is not None:
            save_plan(entry.plan, artifacts / entry.environment / PLAN_FILE, text(entry.plan))
    save_text(artifacts / REPORT_FILE, report(entries))
    return entries


def save_text(path: Path, text: str) -> Path:
    """Write an artifact; a failure is one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PlexusError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def apply_saved(
    target: Target,
    path: str,
    *,
    profile: str | None = None,
    lock_timeout: float = 0.0,
    hooks: Hooks = NO_HOOKS,
    allow_data_loss: bool = False,
) -> Outcome:
    """`ci --apply-plan FILE`: apply exactly a plan saved (and reviewed) earlier, e.g. by the plan job of a
    pipeline whose apply job waits for an approval; refused if stale, if the branch does not deploy to its
    environment, and, in a retained environment, if it can lose data without --allow-data-loss."""
    saved = load_saved_plan(path)
    environment = str(saved.data["environment"])
    if target.mode is not Mode.APPLY or target.environment != environment:
        raise GuardError(f"{path} is a plan for {environment}, but {target.reason}; nothing was applied")
    session = open_session(saved.manifest, profile)
    changes = saved.data["resource_changes"]
    losses = tuple(f"{c.get('address')}: {r}" for c in changes for r in c.get("data_loss_reasons") or ())
    refuse_data_loss(environment, losses, session.env.removal_policy, allow_data_loss)  # what was reviewed
    return converge(session, "apply", saved=saved, lock_timeout=lock_timeout, hooks=hooks)
