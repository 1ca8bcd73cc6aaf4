"""The desired state as typed, frozen values. Defaults live here and only here (derived names in
`plexus_infra.environments`), so a manifest states only what differs from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plexus_infra import environments

MANAGED_BY_TAG = "plexus:managed-by"
ENVIRONMENT_TAG = "plexus:environment"
REMOVAL_POLICY_TAG = "plexus:removal-policy"
MANAGED_BY = "plexus-infra"


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    prefix: str
    expiration_days: int | None = None
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True)
class Lifecycle:
    rules: tuple[LifecycleRule, ...] = ()
    abort_incomplete_multipart_upload_days: int | None = 7  # None: no such housekeeping rule
    noncurrent_version_expiration_days: int | None = 30


@dataclass(frozen=True)
class Encryption:
    algorithm: str = "SSE-S3"
    kms_key_id: str | None = None
    bucket_key: bool = False


@dataclass(frozen=True)
class Bucket:
    name: str
    versioning: bool = True
    encryption: Encryption = Encryption()
    block_public_access: bool = True
    object_ownership: str = "BucketOwnerEnforced"
    enforce_tls: bool = True
    policy_statements: tuple[dict[str, Any], ...] = ()
    lifecycle: Lifecycle = Lifecycle()


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    max_session_duration: int = 3600
    managed_policy_arns: tuple[str, ...] = ()
    permissions_boundary: str | None = None
    ecr_repository_arns: tuple[str, ...] = ()
    # More inline policies than the tool's own: name → statements, sorted by name.
    inline_policies: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()


@dataclass(frozen=True)
class Environment:
    """One environment's whole desired state, as read from its manifest.

    + name: environment name (development, staging, production)
    + source: the manifest path, for messages
    + digest: sha256 of the manifest text, recorded in saved plans
    """

    name: str
    source: str
    digest: str
    region: str = environments.DEFAULT_REGION
    account_id: str | None = None
    profile: str | None = None
    assume_role_arn: str | None = None
    external_id: str | None = None
    session_name: str | None = None
    removal_policy: str = "retain"
    tags: tuple[tuple[str, str], ...] = ()
    bucket: Bucket = Bucket(name="")
    role: Role = Role(name="", description="")
    parameter_prefix: str = ""

    @property
    def ownership_tags(self) -> dict[str, str]:
        """Tags that mark a resource as this tool's, for this environment."""
        return {MANAGED_BY_TAG: MANAGED_BY, ENVIRONMENT_TAG: self.name}

    @property
    def resource_tags(self) -> dict[str, str]:
        """User tags plus ownership tags: what every resource the tool creates carries."""
        return {**dict(self.tags), **self.ownership_tags}

    @property
    def outputs(self) -> tuple[environments.Output, ...]:
        return environments.outputs_for(self.name, self.parameter_prefix)


def environment_from_data(data: dict[str, Any], *, source: str, digest: str) -> Environment:
    """Build the model from schema-valid manifest data. Only what the manifest states is passed on: every
    default is the dataclasses' own, and derived names come from `plexus_infra.environments`."""
    name = data["environment"]
    bucket = dict(data.get("bucket", {}))
    lifecycle = dict(bucket.pop("lifecycle", {}))
    role = data.get("role", {})
    rules = tuple(
        LifecycleRule(
            **{k: v for k, v in rule.items() if k != "transitions"},
            transitions=tuple(Transition(t["days"], t["storage_class"]) for t in rule.get("transitions", ())),
        )
        for rule in lifecycle.pop("rules", ())
    )
    return Environment(
        name=name,
        source=source,
        digest=digest,
        **_given(data, "region", "account_id", "removal_policy", "profile", "assume_role_arn", "external_id"),
        **_given(data, "session_name"),
        tags=tuple(sorted(data.get("tags", {}).items())),
        bucket=Bucket(
            name=bucket.pop("name", environments.default_bucket_name(name)),
            encryption=Encryption(**bucket.pop("encryption", {})),
            policy_statements=tuple(bucket.pop("policy_statements", ())),
            lifecycle=Lifecycle(rules=rules, **lifecycle),
            **bucket,
        ),
        role=Role(
            name=role.get("name", environments.default_role_name(name)),
            description=role.get("description", environments.default_role_description(name)),
            **_given(role, "max_session_duration", "permissions_boundary"),
            managed_policy_arns=tuple(role.get("managed_policy_arns", ())),
            ecr_repository_arns=tuple(role.get("ecr_repository_arns", ())),
            inline_policies=tuple(
                (name, tuple(statements)) for name, statements in sorted(role.get("inline_policies", {}).items())
            ),
        ),
        parameter_prefix=data.get("outputs", {})
        .get("parameter_prefix", environments.default_parameter_prefix(name))
        .rstrip("/"),
    )


def _given(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The `keys` the manifest states, so that a dataclass default fills each one it does not."""
    return {key: data[key] for key in keys if key in data}


ABORT_MULTIPART_RULE_ID = "abort-incomplete-multipart-uploads"
NONCURRENT_RULE_ID = "expire-noncurrent-versions"
