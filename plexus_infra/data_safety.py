"""Which planned changes can lose data: built-in rules, applied to every plan (pure).

A change is marked with its reasons (`Change.data_loss`), shown in the plan text and JSON; `ci` refuses to apply a
plan with any to an environment whose bucket is retained, unless `--allow-data-loss`. The rules:

- a lifecycle expiration added or shortened on a prefix (objects deleted sooner), a noncurrent-version expiration
  shortened, a transition to a class made earlier than it was;
- a lifecycle rule's prefix widened (it acts on more objects; an empty prefix is the whole bucket);
- versioning turned off (overwritten and deleted objects are no longer kept);
- the bucket policy deleted;
- the removal guard moved to destroy on a bucket that holds objects, and a destroy that empties a bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from plexus_infra.manifest.model import REMOVAL_POLICY_TAG
from plexus_infra.plan import Change

Rule = dict[str, Any]  # a lifecycle rule as resources.lifecycle.canonical_rule gives it


def mark(change: Change, *, new_bucket: bool = False) -> Change:
    """`change` with its data-loss reasons (none for most changes). A bucket about to be created holds nothing to
    lose, so its settings are never marked."""
    rules = RULES.get(change.kind)
    reasons = tuple(rules(change)) if rules and not change.is_noop and not new_bucket else ()
    return replace(change, data_loss=reasons) if reasons else change


def _where(prefix: str) -> str:
    return f"{prefix}" if prefix else "every object in the bucket"


def _covering(rules: dict[str, Rule], prefix: str) -> list[Rule]:
    """The enabled rules that act on objects under `prefix` (their own prefix starts it)."""
    return [r for r in rules.values() if r["status"] == "Enabled" and prefix.startswith(r["prefix"])]


def _soonest(rules: list[Rule], pick: Callable[[Rule], int | None]) -> int | None:
    days = [d for d in map(pick, rules) if d is not None]
    return min(days) if days else None


def _transition_days(rule: Rule, storage_class: str) -> int | None:
    days = [t.get("Days") for t in rule["transitions"] if t.get("StorageClass") == storage_class]
    return min((d for d in days if d is not None), default=None)


def lifecycle_losses(change: Change) -> Iterator[str]:
    before: dict[str, Rule] = (change.before or {}).get("rules") or {}
    after: dict[str, Rule] = (change.after or {}).get("rules") or {}
    for rule_id, rule in sorted(after.items()):
        if rule["status"] != "Enabled":
            continue
        prefix, covering = rule["prefix"], _covering(before, rule["prefix"])
        old = _soonest(covering, lambda r: r["expiration_days"])
        new = rule["expiration_days"]
        if new is not None and (old is None or new < old):
            was = f"{old} days" if old is not None else "never"
            yield f"rule {rule_id} expires {_where(prefix)} after {new} days (was {was})"
        old = _soonest(covering, lambda r: r["noncurrent_expiration_days"])
        new = rule["noncurrent_expiration_days"]
        if new is not None and old is not None and new < old:
            yield f"rule {rule_id} expires noncurrent versions of {_where(prefix)} after {new} days (was {old})"
        for transition in rule["transitions"]:
            storage_class, days = transition.get("StorageClass"), transition.get("Days")
            old = _soonest(covering, lambda r, c=storage_class: _transition_days(r, c))
            if days is not None and old is not None and days < old:
                yield f"rule {rule_id} moves {_where(prefix)} to {storage_class} after {days} days (was {old})"
        previous = before.get(rule_id)
        acts = rule["expiration_days"] is not None or rule["transitions"] or rule["noncurrent_expiration_days"]
        if previous and acts and previous["prefix"] != prefix and previous["prefix"].startswith(prefix):
            yield f"rule {rule_id} now covers {_where(prefix)} (was {previous['prefix']})"


def versioning_losses(change: Change) -> Iterator[str]:
    if (change.before or {}).get("status") == "Enabled" and (change.after or {}).get("status") != "Enabled":
        yield "turns versioning off: overwritten and deleted objects are no longer kept"


def policy_losses(change: Change) -> Iterator[str]:
    if (change.before or {}).get("policy") is not None and (change.after or {}).get("policy") is None:
        yield "deletes the bucket policy (and the TLS-only rule with it)"


def bucket_losses(change: Change) -> Iterator[str]:
    before = change.before or {}
    if "delete" in change.actions:
        yield "empties the bucket (every object version) and deletes it"
        return
    was = (before.get("tags") or {}).get(REMOVAL_POLICY_TAG)
    now = ((change.after or {}).get("tags") or {}).get(REMOVAL_POLICY_TAG)
    if now == "destroy" and was != "destroy" and before.get("holds_objects"):
        yield "moves the removal guard to destroy on a bucket that holds objects: destroy would delete them"


RULES: dict[str, Callable[[Change], Iterator[str]]] = {
    "s3_bucket_lifecycle": lifecycle_losses,
    "s3_bucket_versioning": versioning_losses,
    "s3_bucket_policy": policy_losses,
    "s3_bucket": bucket_losses,
}
