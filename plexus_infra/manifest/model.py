"""The desired state as typed, frozen values. Defaults live here (and in schema.json's docs), so a
manifest only states what differs from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MANAGED_BY_TAG = "plexus:managed-by"
ENVIRONMENT_TAG = "plexus:environment"
REMOVAL_POLICY_TAG = "plexus:removal-policy"
MANAGED_BY = "plexus-infra"

OUTPUT_KEYS = ("training-bucket-name", "training-bucket-arn", "sagemaker-training-role-arn")


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
    abort_incomplete_multipart_upload_days: int = 7
    noncurrent_version_expiration_days: int = 30


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


@dataclass(frozen=True)
class Output:
    """One published output: an SSM String parameter that keeps the seed's export name."""

    key: str
    parameter_name: str
    export_name: str


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
    region: str = "us-east-1"
    account_id: str | None = None
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
    def outputs(self) -> tuple[Output, ...]:
        return tuple(Output(key, f"{self.parameter_prefix}/{key}", f"plexus-{self.name}-{key}") for key in OUTPUT_KEYS)


def environment_from_data(data: dict[str, Any], *, source: str, digest: str) -> Environment:
    """Build the model from schema-valid manifest data, filling every default."""
    name = data["environment"]
    bucket = data.get("bucket", {})
    lifecycle = bucket.get("lifecycle", {})
    encryption = bucket.get("encryption", {})
    role = data.get("role", {})
    return Environment(
        name=name,
        source=source,
        digest=digest,
        region=data.get("region", "us-east-1"),
        account_id=data.get("account_id"),
        removal_policy=data.get("removal_policy", "retain"),
        tags=tuple(sorted(data.get("tags", {}).items())),
        bucket=Bucket(
            name=bucket.get("name", f"plexus-{name}-training"),
            versioning=bucket.get("versioning", True),
            encryption=Encryption(
                algorithm=encryption.get("algorithm", "SSE-S3"),
                kms_key_id=encryption.get("kms_key_id"),
                bucket_key=encryption.get("bucket_key", False),
            ),
            block_public_access=bucket.get("block_public_access", True),
            object_ownership=bucket.get("object_ownership", "BucketOwnerEnforced"),
            enforce_tls=bucket.get("enforce_tls", True),
            policy_statements=tuple(bucket.get("policy_statements", ())),
            lifecycle=Lifecycle(
                rules=tuple(
                    LifecycleRule(
                        id=rule["id"],
                        prefix=rule["prefix"],
                        expiration_days=rule.get("expiration_days"),
                        transitions=tuple(
                            Transition(t["days"], t["storage_class"]) for t in rule.get("transitions", ())
                        ),
                    )
                    for rule in lifecycle.get("rules", ())
                ),
                abort_incomplete_multipart_upload_days=lifecycle.get("abort_incomplete_multipart_upload_days", 7),
                noncurrent_version_expiration_days=lifecycle.get("noncurrent_version_expiration_days", 30),
            ),
        ),
        role=Role(
            name=role.get("name", f"plexus-{name}-sagemaker-training"),
            description=role.get("description", f"SageMaker training execution role for Plexus {name}"),
            max_session_duration=role.get("max_session_duration", 3600),
            managed_policy_arns=tuple(role.get("managed_policy_arns", ())),
            permissions_boundary=role.get("permissions_boundary"),
            ecr_repository_arns=tuple(role.get("ecr_repository_arns", ())),
        ),
        parameter_prefix=data.get("outputs", {}).get("parameter_prefix", f"/plexus/{name}").rstrip("/"),
    )


ABORT_MULTIPART_RULE_ID = "abort-incomplete-multipart-uploads"
NONCURRENT_RULE_ID = "expire-noncurrent-versions"
