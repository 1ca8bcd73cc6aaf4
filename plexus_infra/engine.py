"""Observe everything at once → plan → apply in dependency order → verify by reading back.

No state file: the live account is the state. Safety checks (account guard, foreign resources, approval)
all happen before the first write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from plexus_infra import data_safety, lock
from plexus_infra.core.aws import CONFLICT, Clients, Credentials, Identity, call, send
from plexus_infra.core.errors import ApplyError, GuardError, ObserveError, PlexusError
from plexus_infra.lock import LockInfo
from plexus_infra.manifest.model import Environment
from plexus_infra.plan import CREATE, Call, Change, Plan, digest
from plexus_infra.resources.base import NO_EVIDENCE, Context, Evidence, Progress, Resource
from plexus_infra.resources.bucket import (
    S3Bucket,
    S3BucketEncryption,
    S3BucketOwnershipControls,
    S3BucketPublicAccessBlock,
    S3BucketVersioning,
)
from plexus_infra.resources.bucket_policy import S3BucketPolicy
from plexus_infra.resources.cloudformation import hand_over
from plexus_infra.resources.lifecycle import S3BucketLifecycle
from plexus_infra.resources.outputs import SsmOutputs
from plexus_infra.resources.role import IamRole, IamRoleInlinePolicies, IamRolePolicyAttachments
from plexus_infra.saved_plan import SavedPlan, refuse_if_stale, refuse_wrong_operation

# Dependency order for apply; destroy walks it backwards. The outputs come first: they vouch for the bucket
# and the role from before either is made (resources/outputs.py), and are the last thing destroy removes.
RESOURCE_KINDS: tuple[type[Resource], ...] = (
    SsmOutputs,
    S3Bucket,
    S3BucketVersioning,
    S3BucketEncryption,
    S3BucketPublicAccessBlock,
    S3BucketOwnershipControls,
    S3BucketLifecycle,
    S3BucketPolicy,
    IamRole,
    IamRoleInlinePolicies,
    IamRolePolicyAttachments,
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


def open_session(manifest: str, profile: str | None = None) -> Session:
    """The one way a command starts on an environment: validate the manifest (in a forked child, see
    `manifest.background`) while its clients are built, then check the account (`guard_account`). No AWS call
    is made before the manifest is valid; a bad `--profile` is said after the manifest's own problems."""
    from plexus_infra.manifest.background import validate_in_background

    pending = validate_in_background(manifest)
    clients = Clients(pending.region, profile)
    deferred: PlexusError | None = None
    try:
        clients.warm()  # only builds clients: overlaps the validation, calls nothing
    except PlexusError as exc:
        deferred = exc
    env = pending.environment()
    if deferred is not None:
        raise deferred
    credentials = credentials_for(env, profile)
    if env.region != clients.region or credentials != clients.credentials:
        clients = Clients(env.region, credentials=credentials)
    return connect(env, clients)


def credentials_for(env: Environment, profile: str | None = None) -> Credentials:
    """Whose calls an environment's are: `--profile`, else the manifest's `profile`, else the default chain; and
    the manifest's `assume_role_arn`, assumed with them."""
    return Credentials(
        profile=profile or env.profile,
        role_arn=env.assume_role_arn,
        external_id=env.external_id,
        session_name=(env.session_name or "plexus-infra") if env.assume_role_arn else None,
    )


def connect(env: Environment, clients: Clients) -> Session:
    """Check the account (`guard_account`), then set up the environment's resources. A failure names the
    environment (several may be opened at once)."""
    clients.warm()
    try:
        identity = guard_account(env, clients)
    except ObserveError as exc:
        raise ObserveError(f"{env.name} ({env.source}): {exc}") from exc.__cause__
    ctx = Context(env, identity, kms_key_arn(env, clients, identity))
    return Session(env, clients, identity, [kind(ctx) for kind in RESOURCE_KINDS])


def kms_key_arn(env: Environment, clients: Clients, identity: Identity) -> str | None:
    """The bucket's customer key as an ARN, for the role's policy: a key ARN as it is, a key id made into one, an
    alias looked up (kms:DescribeKey), since an alias in a policy's Resource grants nothing on its key
    (https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html). None for SSE-S3 or S3's
    own aws/s3 key."""
    spec = env.bucket.encryption
    key = spec.kms_key_id
    if spec.algorithm != "SSE-KMS" or not key:
        return None
    if key.startswith("arn:") and ":key/" in key:
        return key
    if not key.startswith(("alias/", "arn:")):
        return f"arn:{identity.partition}:kms:{env.region}:{identity.account}:key/{key}"
    hint = f"bucket.encryption.kms_key_id in {env.source} names no key this account can use"
    found = call(clients.kms.describe_key, f"key {key}", hints={"NotFoundException": hint}, KeyId=key)
    return str((found or {})["KeyMetadata"]["Arn"])


def observe_all(session: Session) -> dict[str, Any]:
    """Every resource's live state, read concurrently (reads only)."""
    with ThreadPoolExecutor(max_workers=len(session.resources)) as pool:
        futures = {r.address: pool.submit(r.observe, session.clients) for r in session.resources}
        return {address: future.result() for address, future in futures.items()}


def make_plan(session: Session, operation: str = "apply") -> tuple[Plan, dict[str, Any]]:
    """Read live state and compute the changes for `apply` or `destroy`; nothing is written."""
    observed = observe_all(session)
    evidence = evidence_of(session, observed)
    if operation == "destroy":
        pairs = [(r, r.destroy(observed[r.address], evidence)) for r in reversed(session.resources)]
    else:
        pairs = [(r, r.diff(observed[r.address], evidence)) for r in session.resources]
    notes = [note for resource, change in pairs if (note := resource.note(change))]
    new_bucket = any(change.kind == S3Bucket.kind and change.actions == CREATE for _, change in pairs)
    env = session.env
    plan = Plan(
        environment=env.name,
        manifest=env.source,
        manifest_digest=env.digest,
        account=session.identity.account,
        region=env.region,
        operation=operation,
        changes=tuple(data_safety.mark(change, new_bucket=new_bucket) for _, change in pairs),
        observed_digest=digest(observed),
        resource_digests=tuple((address, digest(state)) for address, state in observed.items()),
        notes=tuple(notes),
    )
    return plan, observed


def evidence_of(session: Session, observed: dict[str, Any]) -> Evidence:
    """What this environment's published outputs vouch for (resources.base.Evidence)."""
    outputs = next(r for r in session.resources if isinstance(r, SsmOutputs))
    return outputs.evidence(observed[outputs.address])


def check_adoption(plan: Plan, adopt: bool) -> None:
    """Never take over what this tool did not create, unless told to; never what another tool still manages."""
    for change in plan.pending:
        if change.managed_by.startswith("CloudFormation stack "):
            raise GuardError(hand_over(change.address, change.managed_by.removeprefix("CloudFormation stack ")))
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
    evidence: Evidence = NO_EVIDENCE,
    adopt: bool = False,
    on_step: Step | None = None,
    progress: Progress | None = None,
) -> None:
    """Send each pending change's planned calls in order, then re-read until the live state matches."""
    resources = session.by_address()
    for change in plan.pending:
        if on_step:
            on_step(change)
        resource = resources[change.address]
        run_change(session.clients, resource, change, evidence=evidence, adopt=adopt, progress=progress)
    verify(session, plan)


def run_change(
    clients: Clients,
    resource: Resource,
    change: Change,
    *,
    evidence: Evidence = NO_EVIDENCE,
    adopt: bool = False,
    progress: Progress | None = None,
) -> None:
    """Send exactly the change's calls. A call that finds its target made meanwhile (`Call.conflict`) ends
    them: the resource is read and planned again, and that plan runs instead (once; a foreign find needs
    --adopt, as at plan time)."""
    if _send_all(clients, resource, change.calls, progress):
        return
    fresh = resource.diff(resource.observe(clients), evidence)
    if fresh.foreign and not adopt:
        raise GuardError(
            f"{fresh.address} was created by someone else while this run applied; it carries no plexus-infra "
            "ownership tags, so it is left alone: rerun with --adopt to take it over"
        )
    if not _send_all(clients, resource, fresh.calls, progress):
        raise ApplyError(f"{fresh.address} keeps changing under this run; run plan to see who else writes it")


def _send_all(clients: Clients, resource: Resource, calls: tuple[Call, ...], progress: Progress | None) -> bool:
    """Send `calls` in order (expanding repeated ones); False when one met a conflict and the rest were not sent."""
    for planned in calls:
        requests = resource.expand(clients, planned) if planned.each else iter((planned,))
        done = 0
        for request in requests:
            answer = send(clients, request)
            if answer is CONFLICT:
                return False
            resource.check_answer(request, answer)
            if planned.each and progress:
                done += _items(request)
                progress(f"{request.label} {request.resource}", done, None)
    return True


def _items(request: Call) -> int:
    """How many things one request acts on (a DeleteObjects batch: its objects), for progress."""
    return len(request.params.get("Delete", {}).get("Objects", ())) or 1


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


def ignore(*_: Any) -> None:
    """A hook that does nothing."""
    return None


@dataclass(frozen=True)
class Hooks:
    """How a run talks to a person; the engine itself never prints or prompts.

    + show_plan: the plan as first observed (before the lock)
    + replanned: the plan changed while waiting for the lock (the new plan, shown before it is applied)
    + waiting: another run holds the lock; we wait for it
    + took_over: the lock of a run that is gone (dead on this host, or its lease ran out) was taken over
    + confirm: asks for approval, raising GuardError to cancel; None for saved plans and --auto-approve
    """

    show_plan: Callable[[Plan], None] = ignore
    replanned: Callable[[Plan], None] = ignore
    waiting: Callable[[LockInfo], None] = ignore
    took_over: Callable[[LockInfo], None] = ignore
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
        lock.clear_abandoned(session.clients, session.env, on_takeover=hooks.took_over)
        return Outcome(plan, applied=False)
    check_adoption(plan, adopt)
    confirm = hooks.confirm if saved is None else None
    if confirm is not None:
        confirm(plan)  # before the lock: a refusal or a slow answer never holds it
    held = lock.held(
        session.clients,
        session.env,
        operation,
        timeout=lock_timeout,
        on_wait=hooks.waiting,
        on_takeover=hooks.took_over,
    )
    with held:
        fresh, observed = make_plan(session, operation)
        if saved is not None:
            refuse_if_stale(saved, fresh)
        elif fresh.observed_digest != plan.observed_digest:
            if not fresh.has_changes:
                return Outcome(fresh, applied=False, superseded=True)
            hooks.replanned(fresh)
            check_adoption(fresh, adopt)
            if confirm is not None:
                confirm(fresh)  # what was approved is not what would run any more
        evidence = evidence_of(session, observed)
        execute(session, fresh, evidence=evidence, adopt=adopt, on_step=hooks.on_step, progress=hooks.progress)
    return Outcome(fresh, applied=True)
