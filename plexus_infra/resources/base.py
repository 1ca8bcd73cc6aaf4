"""The resource interface: observe (reads only) → diff (pure, and plans the calls) → the engine sends them.

A new kind of resource is one subclass: what it wants (`desired`), how to read it (`observe`), which AWS
calls take live state to the desired one (`calls`) and, for destroy, what removes it (`destroy`). Where a
removal depends on what exists at apply time (a bucket's object versions, a role's attached policies), the
planned call says so (`Call.each`) and `expand` lists those things then.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from plexus_infra.core.aws import Clients, Identity
from plexus_infra.core.errors import GuardError, ObserveError
from plexus_infra.core.tags import tag_list, tags_to_set
from plexus_infra.manifest.model import ENVIRONMENT_TAG, MANAGED_BY, MANAGED_BY_TAG, Environment
from plexus_infra.plan import DELETE, UPDATE, Call, Change, compare, noop
from plexus_infra.policy import parse_policy


@dataclass(frozen=True)
class Context:
    """What every resource needs to know: the desired environment, whose account it lands in, and what the
    manifest's references name there (read once per run, before any resource is observed).

    + kms_key_arn: the bucket's customer key as an ARN (the manifest may give a key id or an alias), else None
    """

    env: Environment
    identity: Identity
    kms_key_arn: str | None = None


def owned_by(tags: dict[str, str] | None, env: Environment) -> bool:
    """True when live tags mark the resource as this tool's, for this environment."""
    tags = tags or {}
    return tags.get(MANAGED_BY_TAG) == MANAGED_BY and tags.get(ENVIRONMENT_TAG) == env.name


@dataclass(frozen=True)
class Evidence:
    """What this environment's own published outputs (SSM parameters carrying its ownership tags) name: the
    bucket and the role an apply or adopt of this environment took. Anyone with tagging rights can edit a
    bucket's or role's tags; the outputs still say whose they are, so a tag edit never makes them foreign.

    + published: the outputs' values (bucket name, bucket ARN, role ARN)
    """

    published: frozenset[str] = frozenset()


NO_EVIDENCE = Evidence()


def claim(
    change: Change, tags: dict[str, str] | None, env: Environment, desired: dict[str, Any], *, vouched: bool = False
) -> Change:
    """Ownership decides what a diff may do. Ours (by its tags, or `vouched` for by this environment's outputs
    after its tags were edited): the change as it is, which puts the tags back. Another plexus-infra
    environment's: refused outright, because adopting it would move its removal guard and let this environment's
    destroy delete it. Nobody's (no plexus-infra tags): a foreign change, which apply makes only with --adopt."""
    if tags is None or owned_by(tags, env):
        return change
    if tags.get(MANAGED_BY_TAG) == MANAGED_BY and tags.get(ENVIRONMENT_TAG) != env.name:
        owner = tags.get(ENVIRONMENT_TAG, "(unnamed)")
        raise GuardError(
            f"{change.address} belongs to plexus-infra environment {owner!r}, not {env.name!r} ({env.source}); "
            "refusing to take it over, even with --adopt"
        )
    if vouched:
        return replace(change, reason=f"{change.reason}; ownership tags edited, but this environment's outputs name it")
    return replace(
        change,
        actions=UPDATE,
        after=desired,
        changed=change.changed or ("tags",),
        reason="exists without plexus-infra ownership tags (foreign)",
        foreign=True,
    )


def left_alone(address: str, observed: dict[str, Any]) -> Change:
    """Destroy never touches what is not this environment's."""
    return noop(address, observed, "not managed by plexus-infra for this environment; left alone")


def tag_calls(
    live: dict[str, str],
    wanted: dict[str, str],
    untag: Callable[[list[str]], Call],
    tag: Callable[[list[dict[str, str]]], Call],
) -> list[Call]:
    """The fewest calls that make live tags equal `wanted`: untag the stale keys, set only what differs."""
    stale = sorted(set(live) - set(wanted))
    differing = tags_to_set(live, wanted)
    return [*([untag(stale)] if stale else []), *([tag(tag_list(differing))] if differing else [])]


def within_size(document: dict[str, Any], limit: int, what: str, *more: dict[str, Any]) -> dict[str, Any]:
    """Refuse, at plan time, a policy (or policies, whose sizes AWS adds up) AWS would reject for its size,
    counted without whitespace, as AWS does."""
    size = sum(len(json.dumps(each, separators=(",", ":"))) for each in (document, *more))
    if size > limit:
        raise GuardError(f"{what} would be {size:,} characters; AWS allows {limit:,}: declare fewer or shorter entries")
    return document


def live_policy(document: Any, resource: str) -> dict[str, Any]:
    """A policy document as AWS returned it, parsed; one that is not IAM grammar is a clear ObserveError."""
    try:
        return parse_policy(document)
    except ValueError as exc:
        raise ObserveError(f"{resource}: the live policy document cannot be read: {exc}") from None


class Resource(ABC):
    """One addressable piece of live infrastructure."""

    kind: ClassVar[str]
    noop_reason: ClassVar[str] = "matches the manifest"
    # Attribute → semantic equality, for attributes where == would flap (policies, rule sets).
    equal: ClassVar[dict[str, Callable[[Any, Any], bool]]] = {}

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"

    @abstractmethod
    def desired(self) -> dict[str, Any]:
        """Attribute → value this resource should have (normalized, JSON-able)."""

    @abstractmethod
    def observe(self, clients: Clients) -> dict[str, Any] | None:
        """Read live state, normalized like `desired`; None when the resource does not exist."""

    def diff(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> Change:
        """Pure: what it takes to go from `observed` to `desired`, with the calls that do it."""
        change = self.ownership(self.compare(observed), observed, evidence)
        return change if change.is_noop else replace(change, calls=tuple(self.calls(change)))

    def ownership(self, change: Change, observed: dict[str, Any] | None, evidence: Evidence) -> Change:
        """Pure: what ownership allows of `change`. A setting has no owner of its own: it goes with its parent."""
        return change

    def compare(self, observed: dict[str, Any] | None) -> Change:
        """Pure: the attributes that differ (and whether the resource is ours), before any call is planned."""
        return compare(self.address, observed, self.desired(), self.equal, noop_reason=self.noop_reason)

    @abstractmethod
    def calls(self, change: Change) -> Iterable[Call]:
        """Pure: the AWS calls that take live state from `change.before` to `change.after`."""

    def destroy(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> Change:
        """Pure: what `destroy` does here. A setting has no life of its own: it goes (or stays) with its parent."""
        return noop(self.address, observed, "goes or stays with its parent")

    def check_answer(self, request: Call, answer: Any) -> None:
        """Refuse an answer that reports failure without an error code (S3's DeleteObjects lists its failures)."""
        return None

    def note(self, change: Change) -> str:
        """What a person should hear about `change` beyond its lines in the plan (e.g. what destroy keeps)."""
        return ""

    def expand(self, clients: Clients, call: Call) -> Iterator[Call]:
        """The requests a `call.each` call stands for, from what exists now (reads; the engine sends them)."""
        raise TypeError(f"{self.address} plans no call that repeats over live state, yet got {call.label}")


class Removable(Resource):
    """A resource that `destroy` deletes on its own (bucket, role, outputs)."""

    def owned(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> bool:
        """Whether destroy may remove it: this environment's by its tags, or by its outputs' word."""
        return observed is not None and (owned_by(observed.get("tags"), self.ctx.env) or self.vouched(evidence))

    def vouched(self, evidence: Evidence) -> bool:
        """Whether this environment's published outputs name the resource (see Evidence)."""
        return False


class Tagged(Removable):
    """A removable resource whose own tags (observed as `tags`, AWS's `aws:` tags apart as `system_tags`) say
    whose it is: the bucket and the role."""

    def ownership(self, change: Change, observed: dict[str, Any] | None, evidence: Evidence) -> Change:
        tags = observed["tags"] if observed is not None else None
        change = claim(change, tags, self.ctx.env, self.desired(), vouched=self.vouched(evidence))
        holder = (observed or {}).get("managed_by")
        if holder and not change.is_noop:  # another tool still manages it: apply refuses (engine.check_adoption)
            change = replace(change, reason=f"{change.reason}; managed by {holder}", managed_by=holder)
        return change

    def destroy(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> Change:
        if observed is None:
            return noop(self.address, None, "already absent")
        if not self.owned(observed, evidence):
            return left_alone(self.address, observed)
        return Change(
            self.address, DELETE, observed, None, (), "removed by destroy", calls=tuple(self.removal(observed))
        )

    @abstractmethod
    def removal(self, observed: dict[str, Any]) -> Iterable[Call]:
        """Pure: the calls that delete the resource as observed; absent counts as success."""


# Progress of a long deletion: (description, done so far, total or None when unknown).
Progress = Callable[[str, int, int | None], None]
