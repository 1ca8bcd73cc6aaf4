"""Ownership: the tool never takes over what another environment owns, and asks before adopting what
nobody owns — for the bucket, the role and the published outputs alike."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from plexus_infra.sandbox import Sandbox
from tests.helpers import ROOT, cli

STAGING_BUCKET = "plexus-staging-training"


def manifest(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_another_environments_bucket_is_refused_even_with_adopt(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "apply", "--env", "staging", "--auto-approve")[0] == 0
    intruder = manifest(
        tmp_path,
        "dev2",
        f"version: 1\nenvironment: dev2\nremoval_policy: destroy\nbucket:\n  name: {STAGING_BUCKET}\n",
    )
    for argv in (("plan", intruder), ("apply", intruder, "--auto-approve", "--adopt")):
        code, _, err = cli(capsys, *argv)
        assert code == 1
        assert f"s3_bucket.{STAGING_BUCKET} belongs to plexus-infra environment 'staging', not 'dev2'" in err
        assert "even with --adopt" in err
    tags = {t["Key"]: t["Value"] for t in boto3.client("s3").get_bucket_tagging(Bucket=STAGING_BUCKET)["TagSet"]}
    assert tags["plexus:environment"] == "staging"
    assert tags["plexus:removal-policy"] == "retain"


def test_an_untagged_output_parameter_is_foreign_until_adopted(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/plexus/staging/training-bucket-name", Value="someone-elses", Type="String")
    code, _, err = cli(capsys, "apply", "--env", "staging", "--auto-approve")
    assert code == 1
    assert "ssm_outputs.staging" in err and "--adopt" in err
    assert ssm.get_parameter(Name="/plexus/staging/training-bucket-name")["Parameter"]["Value"] == "someone-elses"
    code, _, err = cli(capsys, "apply", "--env", "staging", "--auto-approve", "--adopt")
    assert code == 0, err
    assert ssm.get_parameter(Name="/plexus/staging/training-bucket-name")["Parameter"]["Value"] == STAGING_BUCKET


def test_a_managed_policy_that_does_not_exist_fails_the_plan_by_name(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"
    text = (ROOT / "environments" / "development.yaml").read_text(encoding="utf-8")
    edited = manifest(tmp_path, "development", text + f"role:\n  managed_policy_arns: [{missing}]\n")
    code, _, err = cli(capsys, "plan", edited)
    assert code == 1
    assert f"iam:GetPolicy managed policy {missing}: NoSuchEntity" in err
    assert "Traceback" not in err


def test_outputs_left_under_an_old_parameter_prefix_are_removed_not_orphaned(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "apply", "--env", "staging", "--auto-approve")[0] == 0
    text = (ROOT / "environments" / "staging.yaml").read_text(encoding="utf-8")
    moved = manifest(tmp_path, "staging", text + "outputs:\n  parameter_prefix: /plexus/v2/staging\n")
    code, out, err = cli(capsys, "plan", moved)
    assert code == 0, err
    assert "- /plexus/staging/training-bucket-name" in out
    assert "+ /plexus/v2/staging/training-bucket-name" in out
    assert cli(capsys, "apply", moved, "--auto-approve")[0] == 0
    names = sorted(p["Name"] for p in boto3.client("ssm").describe_parameters()["Parameters"])
    assert names == [
        "/plexus/v2/staging/sagemaker-training-role-arn",
        "/plexus/v2/staging/training-bucket-arn",
        "/plexus/v2/staging/training-bucket-name",
    ]
    code, out, _ = cli(capsys, "plan", moved, "--detailed-exitcode")
    assert code == 0 and "No changes" in out


def test_destroy_empties_a_bucket_with_thousands_of_versions(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """More versions than one DeleteObjects batch, listed while they are deleted (moto's paging shifted then)."""
    from concurrent.futures import ThreadPoolExecutor

    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    s3 = boto3.client("s3")
    bucket = "plexus-development-training"
    s3.delete_bucket_policy(Bucket=bucket)  # moto refuses writes over HTTP under the TLS-only Deny
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"training-data/k{i % 700}", Body=b"x"), range(2300)))
    code, _, err = cli(capsys, "destroy", "--env", "development", "--auto-approve")
    assert code == 0, err
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
