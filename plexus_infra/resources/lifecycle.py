"""The bucket's lifecycle configuration, compared as a set of rules keyed by ID.

S3 echoes rules back in its own shape (a legacy top-level `Prefix`, `Filter: {}` or `Filter: {Prefix: ""}`,
transitions in any order, an extra `TransitionDefaultMinimumObjectSize`), so both sides go through the same
`canonical_rule` before comparing: a rule that merely reads back differently is never a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from plexus_infra.manifest.model import ABORT_MULTIPART_RULE_ID, NONCURRENT_RULE_ID, Lifecycle, LifecycleRule
from plexus_infra.plan import Call, Change, noop
from plexus_infra.resources.bucket import BucketSetting, s3_call

KNOWN_RULE_KEYS = {
    "ID", "Status", "Prefix", "Filter", "Expiration", "Transitions",
    "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload",
}  # fmt: skip


def rule_prefix(rule: dict[str, Any]) -> str:
    """The prefix a rule applies to, wherever S3 put it: legacy `Prefix`, `Filter.Prefix`, `Filter.And.Prefix`."""
    if "Prefix" in rule:
        return rule["Prefix"] or ""
    rule_filter = rule.get("Filter") or {}
    return rule_filter.get("Prefix") or (rule_filter.get("And") or {}).get("Prefix") or ""


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def transition_set(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Transitions as a sorted list: their order in the document never matters. Every field is kept (a
    `Date` instead of `Days` is still a difference) and sorting never compares a date with a number."""
    return sorted((dict(t) for t in rule.get("Transitions") or ()), key=_canonical_json)


def _extras(block: Any, known: str) -> dict[str, Any]:
    """The fields of a sub-document other than the one `canonical_rule` names, so they still count."""
    return {k: v for k, v in (block or {}).items() if k != known}


def canonical_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One rule in a shape where equal rules compare equal; unknown fields are kept so they still count."""
    rule_filter = rule.get("Filter") or {}
    filter_extras = {k: v for k, v in rule_filter.items() if k not in ("Prefix", "And")}
    and_extras = _extras(rule_filter.get("And"), "Prefix")
    other = {k: v for k, v in rule.items() if k not in KNOWN_RULE_KEYS} | filter_extras | and_extras
    nested = {
        "Expiration": _extras(rule.get("Expiration"), "Days"),
        "NoncurrentVersionExpiration": _extras(rule.get("NoncurrentVersionExpiration"), "NoncurrentDays"),
        "AbortIncompleteMultipartUpload": _extras(rule.get("AbortIncompleteMultipartUpload"), "DaysAfterInitiation"),
    }
    other |= {name: extra for name, extra in nested.items() if extra}
    return {
        "status": rule.get("Status", "Enabled"),
        "prefix": rule_prefix(rule),
        "expiration_days": (rule.get("Expiration") or {}).get("Days"),
        "transitions": transition_set(rule),
        "noncurrent_expiration_days": (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
        "abort_multipart_days": (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
        "other": other,
    }


def unnamed_rule_key(canonical: dict[str, Any]) -> str:
    """A rule without an ID (S3 assigns one, moto does not) is keyed by its content, so two unnamed rules
    in another order are the same configuration and an edited unnamed rule is a different one."""
    return f"<unnamed {hashlib.sha256(_canonical_json(canonical).encode()).hexdigest()[:12]}>"


def canonical_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Rules keyed by ID; a rule without one is keyed by its content (`unnamed_rule_key`)."""
    keyed = {}
    for rule in rules:
        canonical = canonical_rule(rule)
        keyed[rule.get("ID") or unnamed_rule_key(canonical)] = canonical
    return keyed


def aws_rule(rule: LifecycleRule) -> dict[str, Any]:
    """A manifest rule in S3's API shape."""
    document: dict[str, Any] = {"ID": rule.id, "Status": "Enabled", "Filter": {"Prefix": rule.prefix}}
    if rule.expiration_days is not None:
        document["Expiration"] = {"Days": rule.expiration_days}
    if rule.transitions:
        document["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in rule.transitions]
    return document


def aws_rules(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    """The manifest's rules plus the housekeeping rules every environment gets (unless it sets them to null)."""
    housekeeping = []
    if lifecycle.abort_incomplete_multipart_upload_days is not None:
        housekeeping.append(
            {
                "ID": ABORT_MULTIPART_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "AbortIncompleteMultipartUpload": {
                    "DaysAfterInitiation": lifecycle.abort_incomplete_multipart_upload_days
                },
            }
        )
    if lifecycle.noncurrent_version_expiration_days is not None:
        housekeeping.append(
            {
                "ID": NONCURRENT_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": lifecycle.noncurrent_version_expiration_days},
            }
        )
    return [*(aws_rule(rule) for rule in lifecycle.rules), *housekeeping]


class S3BucketLifecycle(BucketSetting):
    kind = "s3_bucket_lifecycle"
    noop_reason = "lifecycle rules already as declared"
    read_operation = "get_bucket_lifecycle_configuration"
    write_operation = "PutBucketLifecycleConfiguration"
    absent_codes = ("NoSuchLifecycleConfiguration",)

    def desired(self) -> dict[str, Any]:
        return {"rules": canonical_rules(aws_rules(self.ctx.env.bucket.lifecycle))}

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"rules": canonical_rules(raw.get("Rules") or [])}

    def write_arguments(self) -> dict[str, Any]:
        return {"LifecycleConfiguration": {"Rules": aws_rules(self.ctx.env.bucket.lifecycle)}}

    def compare(self, observed: dict[str, Any] | None) -> Change:
        """No rules at all (every housekeeping rule set to null) is the same as no configuration."""
        if observed is None and not self.desired()["rules"]:
            return noop(self.address, None, "no lifecycle rules declared and none present")
        return super().compare(observed)

    def calls(self, change: Change) -> Iterable[Call]:
        if not self.desired()["rules"]:  # S3 takes no empty configuration: it is deleted
            yield s3_call("DeleteBucketLifecycle", self.name)
        else:
            yield from super().calls(change)
