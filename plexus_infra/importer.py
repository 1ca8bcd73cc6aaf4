"""`plexus-infra import`: a manifest for an environment that already exists (a CDK stack's bucket and role), read
from live state, so that migrating needs no hand-written YAML.

The live state is read by the resources themselves (their `observe`, reads only), then mapped to manifest fields
stating only what differs from the defaults (`manifest_data`, pure). What a manifest cannot state is refused, all
of it at once and one line each, never dropped: a lifecycle rule filtering by tag, a policy statement outside
the schema's grammar, an inline policy of the role's own. What the first apply will change without losing
anything (a setting the bucket lacks and a manifest always has, a trust policy plexus-infra tightens) is said in
the manifest's header and on the terminal. Written manifests validate before they are written.

Example:
    imported = import_environment(clients, "staging", bucket="plexus-ml-staging-training", role="Role-1A2B")
    Path("environments/staging.yaml").write_text(imported.text)
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from plexus_infra import environments
from plexus_infra.core.aws import Clients, Identity
from plexus_infra.core.errors import ManifestError, PlexusError, Problem
from plexus_infra.manifest.model import (
    ABORT_MULTIPART_RULE_ID,
    ENVIRONMENT_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    NONCURRENT_RULE_ID,
    REMOVAL_POLICY_TAG,
    Bucket,
    Encryption,
    Lifecycle,
    Role,
    environment_from_data,
)
from plexus_infra.policy import policies_equal
from plexus_infra.resources.base import Context
from plexus_infra.resources.bucket import PUBLIC_ACCESS_FLAGS
from plexus_infra.resources.bucket_policy import tls_only_statement
from plexus_infra.resources.role import INLINE_POLICY_NAME, trust_policy

CDK_TAG_PREFIX = "aws-cdk:"  # CDK's own bookkeeping (auto-delete-objects): meaningless once its stack is gone


class ImportRefused(ManifestError):
    """Live settings a manifest cannot state: importing would drop them. One line per setting."""

    def __init__(self, source: str, reasons: list[str]):
        super().__init__([Problem(source, None, None, "", f"cannot import: {reason}") for reason in reasons])


@dataclass
class Mapping:
    """What `manifest_data` makes of live state: the manifest's fields, notes for a person, refusals."""

    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Imported:
    """+ text: the manifest (header comment and YAML) + notes: what the first apply will change, and why"""

    text: str
    notes: tuple[str, ...]


def role_name(role: str) -> str:
    """A role given by name or ARN (`arn:aws:iam::1:role/path/Name` → `Name`): a CDK role's name is CloudFormation's."""
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def observe_live(clients: Clients, identity: Identity, name: str, bucket: str, role: str) -> dict[str, Any]:
    """Every resource's live state, read by the resources of a provisional environment naming that bucket and role."""
    from plexus_infra.engine import RESOURCE_KINDS, Session, observe_all

    data = {"version": 1, "environment": name, "region": clients.region, "bucket": {"name": bucket}}
    data["role"] = {"name": role}
    env = environment_from_data(data, source=f"import {name}", digest="")
    ctx = Context(env, identity)
    session = Session(env, clients, identity, [kind(ctx) for kind in RESOURCE_KINDS])
    return {
        resource.kind: state for resource, state in zip(session.resources, observe_all(session).values(), strict=True)
    }


@dataclass(frozen=True)
class Source:
    """What is imported: the environment's name, the bucket and role (by name), where and whose."""

    environment: str
    bucket: str
    role: str
    region: str
    identity: Identity


def manifest_data(live: dict[str, Any], source: Source) -> Mapping:
    """Pure: the manifest that makes plexus-infra's plan of `live` (observed states by kind) change nothing but
    ownership, as far as a manifest can say it."""
    name, identity, region = source.environment, source.identity, source.region
    bucket, role = live.get("s3_bucket"), live.get("iam_role")
    if bucket is None:
        raise PlexusError("import: no such bucket (s3:HeadBucket answered 404)")
    if role is None:
        raise PlexusError("import: no such role (iam:GetRole answered NoSuchEntity)")
    mapping = Mapping({"version": 1, "environment": name})
    if region != environments.DEFAULT_REGION:
        mapping.data["region"] = region
    mapping.data["account_id"] = identity.account
    _ownership(bucket, role, name, mapping)
    _tags(bucket["tags"], role["tags"], mapping)
    _bucket(live, source.bucket, mapping)
    _role(live, source, mapping)
    if bucket.get("managed_by") or role.get("managed_by"):
        holder = bucket.get("managed_by") or role.get("managed_by")
        mapping.notes.append(
            f"still managed by {holder}: apply --adopt refuses until the stack lets go of it (set its DeletionPolicy "
            "to Retain and deploy, then delete the stack or remove the resources from it)"
        )
    return mapping


def _ownership(bucket: dict[str, Any], role: dict[str, Any], name: str, mapping: Mapping) -> None:
    for what, tags in (("the bucket", bucket["tags"]), ("the role", role["tags"])):
        owner = tags.get(ENVIRONMENT_TAG)
        if tags.get(MANAGED_BY_TAG) == MANAGED_BY and owner != name:
            mapping.refused.append(f"{what} belongs to plexus-infra environment {owner!r}, not {name!r}")
    policy = bucket["tags"].get(REMOVAL_POLICY_TAG)
    if policy == "destroy" or bucket["tags"].get(f"{CDK_TAG_PREFIX}auto-delete-objects") == "true":
        mapping.data["removal_policy"] = "destroy"
        mapping.notes.append("removal_policy: destroy (the bucket was made to be deleted with its objects)")


def _tags(bucket: dict[str, str], role: dict[str, str], mapping: Mapping) -> None:
    """A manifest's tags go on every resource: the bucket's and the role's must agree (ours and CDK's aside)."""

    def user(tags: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in tags.items() if not k.startswith(("plexus:", CDK_TAG_PREFIX))}

    common = {k: v for k, v in user(bucket).items() if role.get(k) == v}
    for what, tags, other in (("the bucket", bucket, "role"), ("the role", role, "bucket")):
        for key in sorted(set(user(tags)) - set(common)):
            mapping.refused.append(
                f"tag {key} = {tags[key]!r} is on {what} only; a manifest's tags go on every resource "
                f"(tag the {other} the same way, or remove it)"
            )
        for key in sorted(k for k in tags if k.startswith(CDK_TAG_PREFIX)):
            mapping.notes.append(f"{what}'s tag {key} is CDK's bookkeeping for its stack; apply removes it")
    if common:
        mapping.data["tags"] = dict(sorted(common.items()))


def _bucket(live: dict[str, Any], name: str, mapping: Mapping) -> None:
    defaults = Bucket(name="")
    fields: dict[str, Any] = {}
    if name != environments.default_bucket_name(mapping.data["environment"]):
        fields["name"] = name
    versioning = (live.get("s3_bucket_versioning") or {}).get("status")
    if versioning != "Enabled":
        fields["versioning"] = False
    fields |= _encryption(live.get("s3_bucket_encryption"), mapping)
    block = live.get("s3_bucket_public_access_block")
    if block is None:
        mapping.notes.append("the bucket has no public access block: apply sets all four flags")
    elif all(block[flag] for flag in PUBLIC_ACCESS_FLAGS):
        pass
    elif not any(block[flag] for flag in PUBLIC_ACCESS_FLAGS):
        fields["block_public_access"] = False
    else:
        on = ", ".join(flag for flag in PUBLIC_ACCESS_FLAGS if block[flag])
        mapping.refused.append(f"the public access block sets only some flags ({on}); a manifest sets all or none")
    ownership = live.get("s3_bucket_ownership_controls") or {}
    if ownership.get("object_ownership") is None:
        mapping.notes.append("the bucket has no object ownership setting: apply sets BucketOwnerEnforced")
    elif ownership["object_ownership"] != defaults.object_ownership:
        fields["object_ownership"] = ownership["object_ownership"]
    if ownership.get("acl_grants_to_others"):
        mapping.notes.append(f"the bucket's ACL grants {', '.join(ownership['acl_grants_to_others'])}: apply resets it")
    fields |= _policy(live.get("s3_bucket_policy"), name, mapping)
    lifecycle = _lifecycle(live.get("s3_bucket_lifecycle"), mapping)
    if lifecycle:
        fields["lifecycle"] = lifecycle
    if fields:
        mapping.data["bucket"] = fields


def _encryption(observed: dict[str, Any] | None, mapping: Mapping) -> dict[str, Any]:
    defaults = Encryption()
    if observed is None:
        mapping.notes.append("the bucket has no default encryption: apply sets SSE-S3")
        return {}
    spec: dict[str, Any] = {}
    if observed["algorithm"] in ("aws:kms", "aws:kms:dsse"):
        if observed["algorithm"] == "aws:kms:dsse":
            mapping.refused.append("default encryption is DSSE-KMS; a manifest states SSE-S3 or SSE-KMS")
        spec["algorithm"] = "SSE-KMS"
        if observed.get("kms_key_id"):
            spec["kms_key_id"] = observed["kms_key_id"]
    if observed["bucket_key"] != defaults.bucket_key:
        spec["bucket_key"] = observed["bucket_key"]
    return {"encryption": spec} if spec else {}


def _policy(observed: dict[str, Any] | None, bucket: str, mapping: Mapping) -> dict[str, Any]:
    """The TLS-only statement is `enforce_tls`; the others are `policy_statements`, if the schema takes them."""
    from plexus_infra.manifest.validate import statement_problems

    document = (observed or {}).get("policy")
    if document is None:
        return {"enforce_tls": False}
    tls = {"Version": "2012-10-17", "Statement": [tls_only_statement(f"arn:aws:s3:::{bucket}")]}
    statements, enforced = [], False
    for statement in document.get("Statement", []):
        if not enforced and policies_equal({"Version": "2012-10-17", "Statement": [statement]}, tls):
            enforced = True
            continue
        problems = statement_problems(statement)
        if problems:
            sid = statement.get("Sid", "(no Sid)")
            mapping.refused.append(f"bucket policy statement {sid}: {problems[0]}")
        else:
            statements.append(statement)
    fields: dict[str, Any] = {} if enforced else {"enforce_tls": False}
    if statements:
        fields["policy_statements"] = statements
    return fields


LIFECYCLE_DEFAULTS = Lifecycle()


def _lifecycle(observed: dict[str, Any] | None, mapping: Mapping) -> dict[str, Any]:
    """Rules as the resource reads them (lifecycle.canonical_rule); housekeeping rules by their own fields."""
    rules = dict((observed or {}).get("rules") or {})
    fields: dict[str, Any] = {}
    for key, rule_id, attribute in (
        ("abort_multipart_days", ABORT_MULTIPART_RULE_ID, "abort_incomplete_multipart_upload_days"),
        ("noncurrent_expiration_days", NONCURRENT_RULE_ID, "noncurrent_version_expiration_days"),
    ):
        rule = rules.pop(rule_id, None)
        days = rule[key] if rule is not None and _only(rule, key) and rule["prefix"] == "" else None
        if rule is not None and days is None:
            mapping.refused.append(f"lifecycle rule {rule_id} is not the housekeeping rule plexus-infra names so")
        if days != getattr(LIFECYCLE_DEFAULTS, attribute):
            fields[attribute] = days
    kept = []
    for rule_id, rule in sorted(rules.items()):
        why = list(_unrepresentable(rule_id, rule))
        mapping.refused += why
        if not why:
            kept.append(_rule(rule_id, rule))
    if kept:
        fields["rules"] = kept
    return fields


def _only(rule: dict[str, Any], key: str) -> bool:
    """The rule does just `key` (and is enabled, with nothing else set)."""
    busy = [k for k in ("expiration_days", "noncurrent_expiration_days", "abort_multipart_days") if rule[k] is not None]
    return rule["status"] == "Enabled" and busy == [key] and not rule["transitions"] and not rule["other"]


def _unrepresentable(rule_id: str, rule: dict[str, Any]) -> Iterator[str]:
    if rule_id.startswith("<unnamed"):
        yield "a lifecycle rule without an ID (a manifest names each rule)"
        return
    if rule["status"] != "Enabled":
        yield f"lifecycle rule {rule_id} is disabled; a manifest's rules are enabled"
    for key, what in (
        ("noncurrent_expiration_days", "expires noncurrent versions"),
        ("abort_multipart_days", "aborts uploads"),
    ):
        if rule[key] is not None:
            yield f"lifecycle rule {rule_id} {what} beside its prefix rule; a manifest's rules expire and transition"
    if rule["other"]:
        yield f"lifecycle rule {rule_id} uses {', '.join(sorted(rule['other']))} (e.g. a filter by tag or size)"
    if any(set(t) != {"Days", "StorageClass"} for t in rule["transitions"]):
        yield f"lifecycle rule {rule_id} transitions by date; a manifest's transitions count days"


def _rule(rule_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule_id, "prefix": rule["prefix"]}
    if rule["expiration_days"] is not None:
        out["expiration_days"] = rule["expiration_days"]
    if rule["transitions"]:
        transitions = sorted(rule["transitions"], key=lambda t: t["Days"])
        out["transitions"] = [{"days": t["Days"], "storage_class": t["StorageClass"]} for t in transitions]
    return out


def _role(live: dict[str, Any], source: Source, mapping: Mapping) -> None:
    role, name, environment, identity = live["iam_role"], source.role, source.environment, source.identity
    defaults = Role(name="", description="")
    fields: dict[str, Any] = {}
    if name != environments.default_role_name(environment):
        fields["name"] = name
    if role["description"] != environments.default_role_description(environment):
        fields["description"] = role["description"]
    if role["max_session_duration"] != defaults.max_session_duration:
        fields["max_session_duration"] = role["max_session_duration"]
    if role["permissions_boundary"]:
        fields["permissions_boundary"] = role["permissions_boundary"]
    attached = (live.get("iam_role_policy_attachments") or {}).get("managed_policy_arns") or []
    if attached:
        fields["managed_policy_arns"] = attached
    if not policies_equal(role["trust_policy"], trust_policy(identity.partition, source.region, identity.account)):
        mapping.notes.append(
            "the role's trust policy is not plexus-infra's: apply replaces it with one that lets only SageMaker in "
            "this account assume the role (aws:SourceAccount and aws:SourceArn conditions)"
        )
    inline = (live.get("iam_role_inline_policies") or {}).get("policies") or {}
    kept = _inline_policies({name: inline[name] for name in sorted(set(inline) - {INLINE_POLICY_NAME})}, mapping)
    if kept:
        fields["inline_policies"] = kept
        mapping.notes.append(
            f"the role's other inline policies ({', '.join(kept)}) are kept as the manifest's role.inline_policies; "
            f"{INLINE_POLICY_NAME} grants the bucket's three prefixes, SageMaker logs and metrics and ECR pull: "
            "once it covers what they grant, delete them from the manifest and apply"
        )
    if INLINE_POLICY_NAME not in inline:
        mapping.notes.append(
            f"apply adds the inline policy {INLINE_POLICY_NAME} (the bucket {source.bucket}, logs, ECR)"
        )
    if fields:
        mapping.data["role"] = fields


def _inline_policies(policies: dict[str, dict[str, Any]], mapping: Mapping) -> dict[str, list[dict[str, Any]]]:
    """The role's other inline policies as `role.inline_policies`, each statement only if the schema takes it."""
    from plexus_infra.manifest.validate import statement_problems

    kept: dict[str, list[dict[str, Any]]] = {}
    for name, document in policies.items():
        extra = sorted(set(document) - {"Version", "Statement"})
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        problems = [f"{', '.join(extra)} is not a manifest's to state"] if extra else []
        if document.get("Version", "2012-10-17") != "2012-10-17":
            problems.append(f"its Version is {document.get('Version')}; a manifest's statements are 2012-10-17's")
        problems += [
            f"statement {statement.get('Sid') or index}: {found[0]}"
            for index, statement in enumerate(statements)
            if (found := statement_problems(statement, "identity_statement"))
        ]
        if problems:
            mapping.refused.append(f"the role's inline policy {name}: {problems[0]}")
        else:
            kept[name] = statements
    return kept


def import_environment(clients: Clients, identity: Identity, name: str, *, bucket: str, role: str) -> Imported:
    """Read the live bucket and role and write the manifest text; ImportRefused lists what it cannot state."""
    import yaml

    from plexus_infra.manifest.validate import environment_from_text

    role = role_name(role)
    live = observe_live(clients, identity, name, bucket, role)
    mapping = manifest_data(live, Source(name, bucket, role, clients.region, identity))
    source = f"import {name}"
    if mapping.refused:
        raise ImportRefused(source, mapping.refused)
    today = datetime.date.today().isoformat()
    header = [
        f"# Imported by `plexus-infra import {name} --bucket {bucket} --role {role}` on {today}",
        f"# from account {identity.account} ({clients.region}). It states only what differs from the defaults.",
        "# Next: plexus-infra plan THIS_FILE; then plexus-infra apply THIS_FILE --adopt",
        *(f"# Note: {note}" for note in mapping.notes),
    ]
    body = yaml.safe_dump(mapping.data, sort_keys=False, allow_unicode=True, width=110)
    text = "\n".join(header) + "\n" + body
    environment_from_text(text, source)  # what is written always validates
    return Imported(text, tuple(mapping.notes))
