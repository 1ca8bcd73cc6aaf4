"""Observe everything at once → plan → apply in dependency order → verify by reading back.

No state file: the live account is the state. Safety checks (account guard, foreign resources, approval)
all happen before the first write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_infra import lock
from plexus_infra.aws import Clients, Identity
from plexus_infra.errors import ApplyError, GuardError, SavedPlanError, StalePlanError
from plexus_infra.lock import LockInfo
from plexus_infra.manifest.model import Environment
from plexus_infra.plan import (
    Change,
    Plan,
    digest,
    operation_article,
    read_saved_plan,
    saved_plan_document,
    stale_reasons,
)
from plexus_infra.resources.base import Context, Progress, Removable, Resource
from plexus_infra.resources.bucket import Bucket, Encryption, OwnershipControls, PublicAccessBlock, Versioning
from plexus_infra.resources.bucket_policy import BucketPolicy
from plexus_infra.resources.lifecycle import LifecycleConfiguration
from plexus_infra.resources.outputs import Outputs
from plexus_infra.resources.role import InlinePolicies, Role, RoleAttachments

# Dependency order for apply; destroy walks it backwards.
RESOURCE_KINDS: tuple[type[Resource], ...] = (
    Bucket,
    Versioning,
    Encryption,
    PublicAccessBlock,
    OwnershipControls,
    LifecycleConfiguration,
    BucketPolicy,
    Role,
    InlinePolicies,
    RoleAttachments,
    Outputs,
)

VERIFY_ATTEMPTS = 6
SAVED_PLAN_MAX_BYTES = 16 * 1024 * 1024


@dataclass
class Session:
    """One run against one environment: its clients, who we are and the resources in dependency order."""

    env: Environment
    clients: Clients
    identity: Identity
    resources: list[Resource]

    def by_address(self) -> dict[str, Resource]:
        return {r.address: r for r in self.resources}


def guard_account(env: Environment, clients: Clients) -> Identity:
    """Who are we, and is this the account the manifest names? Every command that reads or writes the
    environment (plan, apply, destroy, outputs, force-unlock, ci) asks this first, before any other call.

    + env: the manifest; `account_id` unset means any account will do
    + clients: the credentials to check (one sts:GetCallerIdentity)
    Example: guard_account(env, Clients(env.region)).account == "123456789012"
    """
    identity = clients.identity()
    if env.account_id and identity.account != env.account_id:
        raise GuardError(
            f"{env.source} is for account {env.account_id} but the credentials are for account "
            f"{identity.account} ({identity.arn}); refusing to touch it"
        )
    return identity


def connect(env: Environment, clients: Clients | None = None) -> Session:
    """Check the account (`guard_account`), then set up the environment's resources."""
    clients = clients or Clients(env.region)
    clients.warm()
    identity = guard_account(env, clients)
    ctx = Context(env, identity)
    return Session(env, clients, identity, [kind(ctx) for kind in RESOURCE_KINDS])


def observe_all(session: Session) -> dict[str, Any]:
    """Every resource's live state, read concurrently (reads only)."""
    with ThreadPoolExecutor(max_workers=len(session.resources)) as pool:
        futures = {r.address: pool.submit(r.observe, session.clients) for r in session.resources}
        return {address: future.result() for address, future in futures.items()}


def make_plan(session: Session, operation: str = "apply") -> tuple[Plan, dict[str, Any]]:
    """Read live state and compute the changes for `apply` or `destroy`; nothing is written."""
    observed = observe_all(session)
    if operation == "destroy":
        changes = [r.destroy(observed[r.address]) for r in reversed(session.resources)]
    else:
        changes = [r.diff(observed[r.address]) for r in session.resources]
    env = session.env
    notes = [note for note in [retention_note(env, changes)] if note] if operation == "destroy" else []
    plan = Plan(
        environment=env.name,
        manifest=env.source,
        manifest_digest=env.digest,
        account=session.identity.account,
        region=env.region,
        operation=operation,
        changes=tuple(changes),
        observed_digest=digest(observed),
        resource_digests=tuple((address, digest(state)) for address, state in observed.items()),
        notes=tuple(notes),
    )
    return plan, observed


def retention_note(env: Environment, changes: list[Change]) -> str:
    """Say plainly when destroy keeps the bucket, whichever guard (manifest or bucket tag) keeps it."""
    bucket = next(c for c in changes if c.kind == Bucket.kind)
    if bucket.is_noop and bucket.before is not None:
        return f"bucket {env.bucket.name} and every object in it stay ({bucket.reason})"
    return ""


def check_adoption(plan: Plan, adopt: bool) -> None:
    """Never take over what this tool did not create, unless told to."""
    foreign = [c.address for c in plan.pending if c.foreign]
    if foreign and not adopt:
        exist, them = ("exists", "it") if len(foreign) == 1 else ("exist", "them")
        raise GuardError(
            f"{', '.join(foreign)} already {exist} without plexus-infra ownership tags; "
            f"rerun with --adopt to take {them} over (safe too when an earlier apply was interrupted "
            f"right after creating {them}, before it could tag {them})"
        )


Step = Callable[[Change], None]


def execute(
    session: Session,
    plan: Plan,
    *,
    on_step: Step | None = None,
    progress: Progress | None = None,
) -> None:
    """Apply the plan's pending changes in order, then re-read until the live state matches."""
    resources = session.by_address()
    for change in plan.pending:
        if on_step:
            on_step(change)
        resource = resources[change.address]
        if "delete" in change.actions and isinstance(resource, Removable):
            resource.delete(session.clients, change, progress)
        else:
            resource.apply(session.clients, change)
    verify(session, plan)


def verify(session: Session, plan: Plan, *, sleep: Callable[[float], None] | None = None) -> None:
    """Re-read what was written until it matches, giving eventually consistent reads a bounded time."""
    import time

    sleep = sleep or time.sleep
    remaining: list[str] = []
    for attempt in range(VERIFY_ATTEMPTS):
        replan, _ = make_plan(session, plan.operation)
        remaining = [c.address for c in replan.pending]
        if not remaining:
            return
        sleep(min(0.5 * 2**attempt, 4.0))
    raise ApplyError(f"applied, but the live state still differs for {', '.join(remaining)}; run plan to see why")


# --- saved plans and the guarded apply ------------------------------------------------------------------


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


def save_plan(plan: Plan, path: str | Path) -> tuple[Path, Path]:
    """Write the versioned JSON plan to `path` and its text rendering beside it (`plan_files`): what a person
    reviews and what `apply FILE` applies are the same plan."""
    from plexus_infra.render import plan_text

    json_path, text_path = plan_files(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")
    text_path.write_text(plan_text(plan, verbose=True) + "\n", encoding="utf-8")
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
        return str(self.data["manifest"])

    @property
    def operation(self) -> str:
        return str(self.data["operation"])


def load_saved_plan(path: str | Path) -> SavedPlan:
    """Read a plan written by `plan --out`, refusing other files, malformed ones and unreadable format versions."""
    from plexus_infra.manifest.loader import read_text

    source = str(path)
    text = read_text(source, what="saved plan", max_bytes=SAVED_PLAN_MAX_BYTES)
    return SavedPlan(read_saved_plan(text, source), source)


def saved_plan_at(path: str | Path) -> SavedPlan | None:
    """The saved plan at `path` when the file's content is one (a JSON object whose `tool` is plexus-infra,
    whatever the file is called), else None: the file is a manifest (or missing, which the manifest loader
    reports). A file that claims to be a saved plan but is malformed raises SavedPlanError."""
    from plexus_infra.manifest.loader import read_text

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


def _ignore(*_: Any) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How a run talks to a person; the engine itself never prints or prompts.

    + show_plan: the plan as first observed (before the lock)
    + replanned: the plan changed while waiting for the lock (the new plan, shown before it is applied)
    + waiting: another run holds the lock; we wait for it
    + confirm: asks for approval, raising GuardError to cancel; None for saved plans and --auto-approve
    """

    show_plan: Callable[[Plan], None] = _ignore
    replanned: Callable[[Plan], None] = _ignore
    waiting: Callable[[LockInfo], None] = _ignore
    confirm: Callable[[Plan], None] | None = None
    on_step: Step | None = None
    progress: Progress | None = None


NO_HOOKS = Hooks()


@dataclass(frozen=True)
class Outcome:
    """What a guarded run did.

    + plan: the plan that was applied, or found to need nothing
    + applied: whether any write happened
    + superseded: another run made the changes while this one waited for the lock
    """

    plan: Plan
    applied: bool
    superseded: bool = False


def converge(
    session: Session,
    operation: str = "apply",
    *,
    saved: SavedPlan | None = None,
    adopt: bool = False,
    lock_timeout: float = 0.0,
    hooks: Hooks = NO_HOOKS,
) -> Outcome:
    """Plan, then apply under the environment's lock: the one path for `apply`, `destroy`, `apply FILE`, `ci`.

    Nothing to change means no lock and no write. Otherwise the lock is taken before the first write and the
    live state is read again under it, because another run may have written between our plan and our lock:
    a saved plan is then refused if stale; a fresh plan is shown again if it moved, or ends the run if
    nothing is left to do.
    """
    if saved is not None:
        refuse_wrong_operation(saved, operation)
    plan, _ = make_plan(session, operation)
    if saved is not None:
        refuse_if_stale(saved, plan)
    hooks.show_plan(plan)
    if not plan.has_changes:
        return Outcome(plan, applied=False)
    check_adoption(plan, adopt)
    confirm = hooks.confirm if saved is None else None
    if confirm is not None:
        confirm(plan)  # before the lock: a refusal or a slow answer never holds it
    with lock.held(session.clients, session.env, operation, timeout=lock_timeout, on_wait=hooks.waiting):
        fresh, _ = make_plan(session, operation)
        if saved is not None:
            refuse_if_stale(saved, fresh)
        elif fresh.observed_digest != plan.observed_digest:
            if not fresh.has_changes:
                return Outcome(fresh, applied=False, superseded=True)
            hooks.replanned(fresh)
            check_adoption(fresh, adopt)
            if confirm is not None:
                confirm(fresh)  # what was approved is not what would run any more
        execute(session, fresh, on_step=hooks.on_step, progress=hooks.progress)
    return Outcome(fresh, applied=True)
