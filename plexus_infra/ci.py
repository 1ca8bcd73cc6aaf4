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

from plexus_infra.core.errors import ManifestError, PlexusError, Problem
from plexus_infra.engine import NO_HOOKS, Hooks, Outcome, converge, make_plan, open_session
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
    profile: str | None = None,
    lock_timeout: float = 0.0,
    show_plan: Callable[[Plan], None] | None = None,
    hooks: Hooks = NO_HOOKS,
) -> Result:
    """validate → plan → save the plan as artifacts (`text` renders plan.txt) → (APPLY only) apply that saved
    plan, refusing a stale one."""
    session = open_session(manifest, profile)
    plan, _ = make_plan(session, "apply")
    json_path, text_path = save_plan(plan, artifacts / PLAN_FILE, text(plan))
    if show_plan:
        show_plan(plan)
    result = Result(target, plan, (json_path, text_path))
    if target.mode is not Mode.APPLY:
        return result
    outcome = converge(session, "apply", saved=load_saved_plan(json_path), lock_timeout=lock_timeout, hooks=hooks)
    return Result(target, plan, result.artifacts, outcome)
