"""Several environments in one run: `plan --all`, `plan A B C`, `apply A B`, `validate --all`, `outputs --all`.

Every manifest is validated first, and checked against the others (two manifests naming one bucket, role, output
prefix or environment would fight over it): one problem anywhere and no AWS call is made for any of them. Then
each environment gets its session, clients shared by every environment with the same region and credentials
(so one sts:GetCallerIdentity per set of credentials), and all are observed concurrently. An environment that
fails (a role that cannot be assumed, an account guard) is reported and the others still planned.

Example:
    fleet = open_fleet(discover())
    for entry in plan_fleet(fleet): print(entry.environment, entry.plan and entry.plan.counts())
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from plexus_infra import environments
from plexus_infra.core.aws import Clients, Credentials
from plexus_infra.core.errors import GuardError, ManifestError, PlexusError, Problem
from plexus_infra.engine import Session, connect, credentials_for, make_plan
from plexus_infra.manifest.model import Environment
from plexus_infra.manifest.validate import clashes
from plexus_infra.plan import Plan
from plexus_infra.resources.outputs import read_together

NOT_MANIFESTS = ("branches.yaml",)  # environments/branches.yaml maps CI branches; it is not an environment


def discover(root: Path = environments.ENVIRONMENTS_DIR) -> list[str]:
    """Every manifest in `root` (`--all`), in name order."""
    if not root.is_dir():
        raise PlexusError(f"--all: no {root}/ directory here; run plexus-infra from the project directory")
    found = sorted(str(p) for p in root.glob("*.yaml") if p.name not in NOT_MANIFESTS)
    if not found:
        raise PlexusError(f"--all: no manifests in {root}/")
    return found


def validate_all(paths: Iterable[str]) -> tuple[list[Environment], list[Problem]]:
    """Each manifest validated (all of them, whatever fails), then checked against the others."""
    from plexus_infra.manifest.validate import load_environment

    envs: list[Environment] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            envs.append(load_environment(path))
        except ManifestError as exc:
            problems += exc.problems
    return envs, problems + clashes(envs)


class ClientPool:
    """One Clients per (region, credentials), and one identity per credentials, shared by the environments."""

    def __init__(self, profile: str | None = None):
        self.profile = profile
        self._clients: dict[tuple[str, Credentials], Clients] = {}

    def for_environment(self, env: Environment) -> Clients:
        credentials = credentials_for(env, self.profile)
        key = (env.region, credentials)
        if key not in self._clients:
            # Who the credentials are does not depend on the region: clients of another region ask the first.
            same = next((c for (_, k), c in self._clients.items() if k == credentials), None)
            self._clients[key] = Clients(env.region, credentials=credentials, same_identity_as=same)
        return self._clients[key]

    @property
    def all(self) -> list[Clients]:
        return list(self._clients.values())


@dataclass(frozen=True)
class Entry:
    """One environment of a fleet run: its plan, or why it has none.

    + account: the account its credentials reached, when they did
    """

    environment: str
    manifest: str
    session: Session | None = None
    plan: Plan | None = None
    error: str = ""

    @property
    def account(self) -> str:
        return self.session.identity.account if self.session else ""


def open_fleet(paths: list[str], profile: str | None = None) -> tuple[list[Entry], ClientPool]:
    """Validate every manifest (no AWS call if any is wrong: ManifestError with all problems), then connect each
    environment, concurrently; an environment that cannot be connected gets its error, the others go on."""
    envs, problems = validate_all(paths)
    if problems:
        verdict = f"no AWS call was made for any of the {len(paths)} environments: each manifest must validate first"
        raise ManifestError([*problems, Problem("plexus-infra", None, None, "", verdict)])
    pool = ClientPool(profile)
    for env in envs:
        pool.for_environment(env).warm()  # before threads share them

    def open_one(env: Environment) -> Entry:
        try:
            return Entry(env.name, env.source, session=connect(env, pool.for_environment(env)))
        except PlexusError as exc:
            return Entry(env.name, env.source, error=str(exc))

    with ThreadPoolExecutor(max_workers=max(1, len(envs))) as threads:
        return list(threads.map(open_one, envs)), pool


def plan_fleet(entries: list[Entry], operation: str = "apply") -> list[Entry]:
    """Every connected environment's plan, concurrently; one that fails gets its error instead. Environments
    sharing clients read their outputs together first (resources.outputs.read_together): a few calls for all."""
    groups: dict[int, list[Session]] = {}
    for entry in entries:
        if entry.session is not None:
            groups.setdefault(id(entry.session.clients), []).append(entry.session)
    for sessions in groups.values():
        if len(sessions) > 1:
            with contextlib.suppress(PlexusError):  # each environment then reads for itself, and says what fails
                read_together(sessions[0].clients, [session.env for session in sessions])

    def plan_one(entry: Entry) -> Entry:
        if entry.session is None:
            return entry
        try:
            plan, _ = make_plan(entry.session, operation)
        except PlexusError as exc:
            return Entry(entry.environment, entry.manifest, entry.session, error=f"{entry.environment}: {exc}")
        return Entry(entry.environment, entry.manifest, entry.session, plan=plan)

    try:
        with ThreadPoolExecutor(max_workers=max(1, len(entries))) as threads:
            return list(threads.map(plan_one, entries))
    finally:
        for sessions in groups.values():
            sessions[0].clients.shared.clear()  # read for these plans only: never for a later one


def refuse_failures(entries: list[Entry]) -> None:
    """Stop before writing anything when an environment could not even be planned."""
    failed = [entry for entry in entries if entry.error]
    if failed:
        raise GuardError(f"{failed[0].error}; nothing was applied")
