"""Changes and plans: the contract between diffing, rendering, saving and applying.

The JSON form is versioned like Terraform's (`format_version`: minor = additive, major = breaking),
sorted by address, with `actions` as a list of verbs. Internal dataclasses are converted, never dumped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from plexus_infra.core.aws import Call

# 1.1, additive: each change lists the AWS calls it plans (`calls`), who else manages it (`managed_by`) and
# whether it can lose data (`data_loss`, `data_loss_reasons`).
FORMAT_VERSION = "1.1"

NOOP = ("no-op",)
CREATE = ("create",)
UPDATE = ("update",)
DELETE = ("delete",)
REPLACE = ("delete", "create")

# How people see each verb list, as Terraform draws them: (symbol, rich style).
SYMBOLS: dict[tuple[str, ...], tuple[str, str]] = {
    CREATE: ("+", "green"),
    UPDATE: ("~", "yellow"),
    DELETE: ("-", "red"),
    REPLACE: ("-/+", "magenta"),
    ("create", "delete"): ("+/-", "magenta"),
    NOOP: ("=", "dim"),
}


@dataclass(frozen=True)
class Change:
    """What one resource needs, attribute by attribute.

    + address: `kind.name`, unique in a plan (e.g. `s3_bucket_versioning.plexus-development-training`)
    + actions: one of NOOP, CREATE, UPDATE, DELETE, REPLACE
    + before / after: attribute → value, normalized (None when the resource is absent / to be deleted)
    + changed: the attributes whose values differ semantically; apply writes only these
    + reason: why (for a no-op: why nothing needs doing)
    + foreign: the live resource exists but is not marked as this tool's; applying would adopt it
    + calls: the AWS requests that make the change, in order; apply sends exactly these
    + managed_by: another tool that still manages the live resource (`CloudFormation stack X`): apply refuses
    + data_loss: why the change can lose data, when it can (plexus_infra.data_safety)
    """

    address: str
    actions: tuple[str, ...]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: tuple[str, ...] = ()
    reason: str = ""
    foreign: bool = False
    calls: tuple[Call, ...] = ()
    managed_by: str = ""
    data_loss: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.address.split(".", 1)[0]

    @property
    def is_noop(self) -> bool:
        return self.actions == NOOP

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "actions": list(self.actions),
            "before": self.before,
            "after": self.after,
            "changed_attributes": list(self.changed),
            "reason": self.reason or None,
            "foreign": self.foreign,
            "calls": [call.to_json() for call in self.calls],
            "managed_by": self.managed_by or None,
            "data_loss": bool(self.data_loss),
            "data_loss_reasons": list(self.data_loss),
        }


def noop(address: str, state: dict[str, Any] | None, reason: str) -> Change:
    """Nothing to do, said out loud."""
    return Change(address, NOOP, state, state, (), reason)


def compare(
    address: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    equal: dict[str, Any] | None = None,
    *,
    noop_reason: str,
) -> Change:
    """Create when absent, update listing exactly the attributes that differ, else a no-op.

    `equal` maps an attribute to a semantic equality function (policies, rule sets); others compare with ==.
    """
    if before is None:
        return Change(address, CREATE, None, after, tuple(after), "does not exist")
    equal = equal or {}
    changed = tuple(name for name, value in after.items() if not equal.get(name, _plain_equal)(before.get(name), value))
    if not changed:
        return noop(address, before, noop_reason)
    return Change(address, UPDATE, before, after, changed, "differs from the manifest")


def _plain_equal(a: Any, b: Any) -> bool:
    return a == b


@dataclass(frozen=True)
class Plan:
    """A whole plan for one environment.

    + operation: "apply" or "destroy"
    + observed_digest: sha256 of the live state the plan was made from (a saved plan is refused once it moves)
    + tool: which tool made it (`plexus-infra`; `plexus` for provisioning plans), so neither applies the other's
    """

    environment: str
    manifest: str
    manifest_digest: str
    account: str
    region: str
    operation: str
    changes: tuple[Change, ...]
    observed_digest: str
    resource_digests: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    tool: str = "plexus-infra"

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.is_noop)

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    @property
    def data_loss(self) -> tuple[str, ...]:
        """Every pending change's data-loss reasons, as `address: reason`."""
        return tuple(f"{c.address}: {reason}" for c in self.pending for reason in c.data_loss)

    def counts(self) -> dict[str, int]:
        """Terraform's summary: a replace counts as one add and one destroy."""
        counts = {"add": 0, "change": 0, "destroy": 0}
        for change in self.pending:
            counts["add"] += "create" in change.actions
            counts["change"] += "update" in change.actions
            counts["destroy"] += "delete" in change.actions
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "tool": self.tool,
            "operation": self.operation,
            "environment": self.environment,
            "manifest": self.manifest,
            "manifest_digest": self.manifest_digest,
            "account": self.account,
            "region": self.region,
            "observed_digest": self.observed_digest,
            "observed": dict(self.resource_digests),
            "summary": self.counts(),
            "notes": list(self.notes),
            "resource_changes": [c.to_json() for c in sorted(self.changes, key=lambda c: c.address)],
        }


def digest(observed: dict[str, Any]) -> str:
    """Stable sha256 of observed live state (addresses and normalized values)."""
    text = json.dumps(observed, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def summary_line(plan: Plan) -> str:
    """Terraform's last line: "Plan: 1 to add, 2 to change, 0 to destroy." or that nothing needs doing.

    Example: summary_line(plan) == "No changes. Infrastructure matches environments/staging.yaml."
    """
    if not plan.has_changes:
        if plan.operation == "destroy":
            return f"No changes. Nothing left to destroy for {plan.manifest}."
        return f"No changes. Infrastructure matches {plan.manifest}."
    counts = plan.counts()
    verb = "Destroy" if plan.operation == "destroy" else "Plan"
    return f"{verb}: {counts['add']} to add, {counts['change']} to change, {counts['destroy']} to destroy."


TOOL = "plexus-infra"
