"""Observe everything at once → plan → apply in dependency order → verify by reading back.

No state file: the live account is the state. Safety checks (account guard, foreign resources, approval)
all happen before the first write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from plexus_infra import lock
from plexus_infra.aws import Clients, Identity
from plexus_infra.errors import ApplyError, GuardError
from plexus_infra.lock import LockInfo
from plexus_infra.manifest.model import Environment
from plexus_infra.plan import Change, Plan, digest
from plexus_infra.resources.base import Context, Progress, Removable, Resource
from plexus_infra.resources.bucket import Bucket, Encryption, OwnershipControls, PublicAccessBlock, Versioning
from plexus_infra.resources.bucket_policy import BucketPolicy
from plexus_infra.resources.lifecycle import LifecycleConfiguration
from plexus_infra.resources.outputs import Outputs
from plexus_infra.resources.role import InlinePolicies, Role, RoleAttachments
from plexus_infra.saved_plan import SavedPlan, refuse_if_stale, refuse_wrong_operation

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
