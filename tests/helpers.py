"""Helpers for the tests: driving the real entry points, the names the shipped manifests give, and builders of
known values. Fixtures live in conftest.py; test modules import from here, never from each other."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plexus_infra.plan import Change, Plan, noop
from plexus_infra.resources.bucket_policy import tls_only_statement

ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT = ROOT / "environments" / "development.yaml"
DEV_BUCKET = "plexus-development-training"
DEV_ROLE = "plexus-development-sagemaker-training"
STAGING_BUCKET = "plexus-staging-training"
STAGING_ROLE = "plexus-staging-sagemaker-training"
FIXTURES = Path(__file__).parent / "resources"
LOCK_PREFIX = "/plexus-infra/locks/"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `plexus-infra ARGV` in-process, as pipx's tests drive main(): (exit code, stdout, stderr)."""
    from plexus_infra.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pending(manifest: Path = DEVELOPMENT, operation: str = "apply") -> list[str]:
    """Addresses a fresh plan of `manifest` would still change."""
    from plexus_infra.engine import make_plan, open_session

    plan, _ = make_plan(open_session(str(manifest)), operation)
    return [change.address for change in plan.pending]


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` on top of `base`, mappings merged key by key; neither input is modified."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resource_for(case: dict[str, Any], kind: str) -> Any:
    """The resource of `kind` for a fixture case: tests/resources/manifest.json with the case's overrides, in
    account 123456789012."""
    from plexus_infra.core.aws import Identity
    from plexus_infra.engine import RESOURCE_KINDS
    from plexus_infra.manifest.model import environment_from_data
    from plexus_infra.resources.base import Context

    base = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    env = environment_from_data(
        deep_merge(base, case.get("manifest", {})), source="tests/resources/manifest.json", digest="fixture"
    )
    identity = Identity("123456789012", "arn:aws:iam::123456789012:user/fixture", "aws")
    return {k.kind: k for k in RESOURCE_KINDS}[kind](Context(env, identity))


def run_cli(
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    module: str = "plexus_infra",
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


TLS = {"Version": "2012-10-17", "Statement": [tls_only_statement(f"arn:aws:s3:::{STAGING_BUCKET}")]}
BY_HAND = {
    "Sid": "ByHand",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{STAGING_BUCKET}/*",
}


def known_plan(
    operation: str = "apply", changes: tuple[Change, ...] | None = None, notes: tuple[str, ...] = ()
) -> Plan:
    """A staging plan with one change of each shape: scalar, policy document, list, nested create, no-op."""
    if changes is None:
        changes = (
            Change(
                f"s3_bucket_versioning.{STAGING_BUCKET}",
                ("update",),
                {"status": "Suspended"},
                {"status": "Enabled"},
                ("status",),
                "differs from the manifest",
            ),
            noop(
                f"s3_bucket_encryption.{STAGING_BUCKET}",
                {"algorithm": "AES256"},
                "default encryption already as declared",
            ),
            Change(
                f"s3_bucket_policy.{STAGING_BUCKET}",
                ("update",),
                {"policy": {**TLS, "Statement": [*TLS["Statement"], BY_HAND]}},
                {"policy": TLS},
                ("policy",),
                "differs from the manifest",
            ),
            Change(
                f"iam_role_policy_attachments.{STAGING_ROLE}",
                ("update",),
                {"managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
                {"managed_policy_arns": []},
                ("managed_policy_arns",),
                "differs from the manifest",
            ),
            Change(
                "ssm_outputs.staging",
                ("create",),
                None,
                {
                    "/plexus/staging/training-bucket-name": {
                        "value": STAGING_BUCKET,
                        "type": "String",
                        "tags": {"project": "plexus"},
                    }
                },
                ("/plexus/staging/training-bucket-name",),
                "does not exist",
            ),
        )
    return Plan(
        environment="staging",
        manifest="environments/staging.yaml",
        manifest_digest="m" * 64,
        account="123456789012",
        region="us-east-1",
        operation=operation,
        changes=changes,
        observed_digest="o" * 64,
        resource_digests=tuple((c.address, "d" * 64) for c in changes),
        notes=notes,
    )


@dataclass(frozen=True)
class Request:
    operation: str  # e.g. "s3:PutBucketVersioning"
    target: str  # the bucket, role or parameter it names

    @property
    def is_write(self) -> bool:
        from plexus_infra.core.aws import WRITE_PREFIXES

        return self.operation.split(":", 1)[1].startswith(WRITE_PREFIXES)

    @property
    def is_lock(self) -> bool:
        """The environment lock (an SSM parameter under /plexus-infra/locks/) is bookkeeping, not a resource write."""
        return self.target.startswith(LOCK_PREFIX)


class Recorder:
    """Every AWS request made by the tool's own clients during a test."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def clear(self) -> None:
        self.requests.clear()

    @property
    def operations(self) -> set[str]:
        return {r.operation for r in self.requests}

    @property
    def writes(self) -> list[Request]:
        """Writes to managed resources (the environment lock excluded)."""
        return [r for r in self.requests if r.is_write and not r.is_lock]

    @property
    def write_operations(self) -> set[str]:
        return {r.operation for r in self.writes}


@dataclass(frozen=True)
class AwsClients:
    s3: Any
    iam: Any
    ssm: Any


def plexus_cdk_bucket_access(bucket: str) -> dict[str, Any]:
    """The inline policy Plexus's CDK MLTrainingStack gives its training role (TrainingBucketAccess): read, write
    and list on the whole bucket."""
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
                "Resource": [arn, f"{arn}/*"],
            }
        ],
    }
