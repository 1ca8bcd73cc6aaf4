"""Observe everything at once → plan → apply in dependency order → verify by reading back.

No state file: the live account is the state. Safety checks (account guard, foreign resources, approval)
all happen before the first write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from plexus_infra.aws import Clients, Identity
from plexus_infra.errors import ApplyError, GuardError
from plexus_infra.manifest.model import Environment
from plexus_infra.plan import Change, Plan, digest
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


@dataclass
class Session:
    """One run against one environment: its clients, who we are and the resources in dependency order."""

    env: Environment
    clients: Clients
    identity: Identity
    resources: list[Resource]

    def by_address(self) -> dict[str, Resource]:
        return {r.address: r for r in self.resources}


def connect(env: Environment, clients: Clients | None = None) -> Session:
    """Who are we, and is this the account the manifest names? Refuses before any other call."""
    clients = clients or Clients(env.region)
    clients.warm()
    identity = clients.identity()
    if env.account_id and identity.account != env.account_id:
        raise GuardError(
            f"{env.source} is for account {env.account_id} but the credentials are for account "
            f"{identity.account} ({identity.arn}); refusing to touch it"
        )
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
    notes = []
    if operation == "destroy" and env.removal_policy == "retain":
        notes.append(f"removal_policy is retain: bucket {env.bucket.name} and every object in it stay")
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


def check_adoption(plan: Plan, adopt: bool) -> None:
    """Never take over what this tool did not create, unless told to."""
    foreign = [c.address for c in plan.pending if c.foreign]
    if foreign and not adopt:
        raise GuardError(
            f"{', '.join(foreign)} already exist without plexus-infra ownership tags; "
            "rerun with --adopt to take them over"
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
