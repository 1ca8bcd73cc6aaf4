"""The resource interface: observe (reads only) → diff (pure) → apply (writes only).

A new kind of resource is one subclass: say what it wants (`desired`), how to read it (`observe`), how
to write the attributes that differ (`apply`) and, for destroy, how it goes away (`delete`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from plexus_infra.aws import Clients, Identity
from plexus_infra.errors import GuardError, ObserveError
from plexus_infra.manifest.model import ENVIRONMENT_TAG, MANAGED_BY, MANAGED_BY_TAG, Environment
from plexus_infra.plan import DELETE, UPDATE, Change, compare, noop
from plexus_infra.policy import parse_policy


@dataclass(frozen=True)
class Context:
    """What every resource needs to know: the desired environment and whose account it lands in."""

    env: Environment
    identity: Identity

    @property
    def partition(self) -> str:
        return self.identity.partition

    @property
    def account(self) -> str:
        return self.identity.account

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.env.bucket.name}"

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.env.role.name}"


def owned_by(tags: dict[str, str] | None, env: Environment) -> bool:
    """True when live tags mark the resource as this tool's, for this environment."""
    tags = tags or {}
    return tags.get(MANAGED_BY_TAG) == MANAGED_BY and tags.get(ENVIRONMENT_TAG) == env.name


def claim(change: Change, tags: dict[str, str] | None, env: Environment, desired: dict[str, Any]) -> Change:
    """Ownership decides what a diff may do. Ours: the change as it is. Nobody's (no plexus-infra tags): a
    foreign change, which apply makes only with --adopt. Another plexus-infra environment's: refused outright,
    because adopting it would move its removal guard and let this environment's destroy delete it."""
    if tags is None or owned_by(tags, env):
        return change
    if tags.get(MANAGED_BY_TAG) == MANAGED_BY:
        owner = tags.get(ENVIRONMENT_TAG, "(unnamed)")
        raise GuardError(
            f"{change.address} belongs to plexus-infra environment {owner!r}, not {env.name!r} ({env.source}); "
            "refusing to take it over, even with --adopt"
        )
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


def sync_tags(
    live: dict[str, str],
    wanted: dict[str, str],
    untag: Callable[[list[str]], object],
    tag: Callable[[list[dict[str, str]]], object],
) -> None:
    """Make live tags equal `wanted` with the fewest writes: untag the stale keys, set only what differs."""
    stale = sorted(set(live) - set(wanted))
    if stale:
        untag(stale)
    differing = tags_to_set(live, wanted)
    if differing:
        tag(tag_list(differing))


def within_size(document: dict[str, Any], limit: int, what: str) -> dict[str, Any]:
    """Refuse, at plan time, a policy AWS would reject for its size (counted without whitespace, as AWS does)."""
    size = len(json.dumps(document, separators=(",", ":")))
    if size > limit:
        raise GuardError(f"{what} would be {size:,} characters; AWS allows {limit:,}: declare fewer or shorter entries")
    return document


def live_policy(document: Any, resource: str) -> dict[str, Any]:
    """A policy document as AWS returned it, parsed; one that is not IAM grammar is a clear ObserveError."""
    try:
        return parse_policy(document)
    except ValueError as exc:
        raise ObserveError(f"{resource}: the live policy document cannot be read: {exc}") from None


def tag_dict(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    """AWS's `[{"Key": k, "Value": v}]` as `{k: v}`: tags compare as dicts, order never matters."""
    return {tag["Key"]: tag["Value"] for tag in tag_list or ()}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """`{k: v}` as AWS's `[{"Key": k, "Value": v}]`, sorted by key so requests are deterministic."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tags_to_set(live: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The wanted tags that are missing or have another value live: all a tag-merging API needs to be sent.

    Example: tags_to_set({"a": "1", "b": "2"}, {"a": "1", "b": "3"}) == {"b": "3"}
    """
    return {key: value for key, value in wanted.items() if live.get(key) != value}


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

    def diff(self, observed: dict[str, Any] | None) -> Change:
        """Pure: what it takes to go from `observed` to `desired`."""
        return compare(self.address, observed, self.desired(), self.equal, noop_reason=self.noop_reason)

    @abstractmethod
    def apply(self, clients: Clients, change: Change) -> None:
        """Write exactly what `change` lists."""

    def destroy(self, observed: dict[str, Any] | None) -> Change:
        """Pure: what `destroy` does here. A setting has no life of its own: it goes (or stays) with its parent."""
        return noop(self.address, observed, "goes or stays with its parent")


class Removable(Resource):
    """A resource that `destroy` deletes on its own (bucket, role, outputs)."""

    def destroy(self, observed: dict[str, Any] | None) -> Change:
        if observed is None:
            return noop(self.address, None, "already absent")
        return Change(self.address, DELETE, observed, None, (), "removed by destroy")

    @abstractmethod
    def delete(self, clients: Clients, change: Change) -> None:
        """Remove the resource; absent counts as success."""


# Progress of a long deletion: (description, done so far, total or None when unknown).
Progress = Callable[[str, int, int | None], None]
