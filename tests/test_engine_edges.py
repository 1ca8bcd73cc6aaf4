"""Edges found by using the tool by hand: what is attached to the role from outside, limits AWS enforces that
moto does not, saved plans used away from where they were made, and plan output written where it cannot go."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest

from plexus_infra.sandbox import Sandbox
from tests.helpers import ROOT, cli

ROLE = "plexus-development-sagemaker-training"
DEV = "plexus-development-training"


def development_with(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "development.yaml"
    path.write_text((ROOT / "environments" / "development.yaml").read_text(encoding="utf-8") + extra)
    return str(path)


def test_destroy_takes_the_role_out_of_instance_profiles_first(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    iam = boto3.client("iam")
    iam.create_instance_profile(InstanceProfileName="by-hand")
    iam.add_role_to_instance_profile(InstanceProfileName="by-hand", RoleName=ROLE)
    code, _, err = cli(capsys, "destroy", "--env", "development", "--auto-approve")
    assert code == 0, err
    assert ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert iam.get_instance_profile(InstanceProfileName="by-hand")["InstanceProfile"]["Roles"] == []


def test_an_extra_inline_policy_is_the_only_policy_shown(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    boto3.client("iam").put_role_policy(RoleName=ROLE, PolicyName="sneaky", PolicyDocument=json.dumps(document))
    code, out, _ = cli(capsys, "plan", "--env", "development")
    assert code == 0
    assert "- policies.sneaky:" in out
    assert "policies.plexus-training-access" not in out  # the same document, however IAM orders it


def test_a_permissions_boundary_set_by_hand_is_drift_and_one_declared_is_kept(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    iam = boto3.client("iam")
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    iam.put_role_permissions_boundary(RoleName=ROLE, PermissionsBoundary=boundary)
    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 2
    assert f'- permissions_boundary = "{boundary}"' in out
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    assert "PermissionsBoundary" not in iam.get_role(RoleName=ROLE)["Role"]

    declared = development_with(tmp_path, f"role:\n  permissions_boundary: {boundary}\n")
    assert cli(capsys, "apply", declared, "--auto-approve")[0] == 0
    assert iam.get_role(RoleName=ROLE)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert "No changes" in cli(capsys, "plan", declared)[1]


def test_an_inline_policy_too_large_for_iam_is_refused_at_plan(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """IAM caps a role's inline policies at 10,240 characters; moto does not, so the tool must."""
    arns = "".join(
        f"    - arn:aws:ecr:us-east-1:123456789012:repository/team-{i:03d}/some-long-image-name\n" for i in range(200)
    )
    manifest = development_with(tmp_path, f"role:\n  ecr_repository_arns:\n{arns}")
    code, _, err = cli(capsys, "apply", manifest, "--auto-approve")
    assert code == 1
    assert "inline policy would be" in err and "AWS allows 10,240" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []  # refused before any write


def test_plan_out_where_it_cannot_write_is_one_line(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "outdir").mkdir()
    code, _, err = cli(capsys, "plan", "--env", "development", "--out", str(tmp_path / "outdir"))
    assert code == 1
    assert err.startswith("error: cannot save the plan to") and err.count("\n") == 1


def test_a_saved_plan_used_away_from_its_directory_says_where_its_manifest_was(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "plan.json"
    assert cli(capsys, "plan", "--env", "development", "--out", str(saved))[0] == 0
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "apply", str(saved), "--auto-approve")
    assert code == 1
    assert "was made from environments/development.yaml, which is not found from here" in err
    monkeypatch.chdir(ROOT)
    assert os.getcwd() == str(ROOT)


def test_a_hand_edited_saved_plan_is_refused(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert cli(capsys, "plan", "--env", "development", "--out", str(saved))[0] == 0
    data = json.loads(saved.read_text())
    for change in data["resource_changes"]:
        if change["kind"] == "s3_bucket_versioning":
            change["after"]["status"] = "Suspended"
    saved.write_text(json.dumps(data))
    code, _, err = cli(capsys, "apply", str(saved), "--auto-approve")
    assert code == 1
    assert "resource_changes are not what this manifest and live state give" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_customer_key_named_by_its_alias_is_granted_by_its_arn(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    """S3 needs kms:GenerateDataKey and kms:Decrypt on a customer key for every object written and read (moto
    checks neither); an alias in a policy's Resource grants nothing on its key, so the alias is looked up."""
    kms = boto3.client("kms")
    key = kms.create_key(Description="training data")["KeyMetadata"]
    kms.create_alias(AliasName="alias/plexus-training", TargetKeyId=key["KeyId"])
    manifest = development_with(
        tmp_path, "  encryption:\n    algorithm: SSE-KMS\n    kms_key_id: alias/plexus-training\n"
    )
    assert cli(capsys, "apply", manifest, "--auto-approve")[0] == 0
    document = boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName="plexus-training-access")["PolicyDocument"]
    granted = next(s for s in document["Statement"] if s["Sid"] == "TrainingBucketKey")
    assert granted["Resource"] == key["Arn"]
    assert sorted(granted["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_an_alias_that_names_no_key_is_one_line_before_any_write(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    manifest = development_with(tmp_path, "  encryption:\n    algorithm: SSE-KMS\n    kms_key_id: alias/missing\n")
    code, out, err = cli(capsys, "apply", manifest, "--auto-approve")
    assert code == 1 and out == ""
    assert err.startswith("error: kms:DescribeKey key alias/missing: NotFoundException") and err.count("\n") == 1
    assert "bucket.encryption.kms_key_id in" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_bucket_name_another_account_owns_is_one_line_naming_both_causes(
    real_aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """HeadBucket answers a bare 403 both when another account owns the name and when s3:ListBucket is missing;
    moto has no other accounts' buckets, so the proxy answers as S3 does."""
    real_aws.rules.other_accounts_buckets.add("plexus-development-training")
    code, out, err = cli(capsys, "plan", "--env", "development")
    assert code == 1 and out == ""
    assert err == (
        "error: s3:HeadBucket bucket plexus-development-training: 403: Forbidden (another AWS account owns this bucket "
        "name, or these credentials lack s3:ListBucket on it; choose another bucket.name in "
        "environments/development.yaml, or grant s3:ListBucket)\n"
    )


def test_an_old_buckets_acl_grants_are_reset_before_ownership_is_enforced(
    real_aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """S3 refuses BucketOwnerEnforced while the ACL grants others (InvalidBucketAclWithObjectOwnership); moto does
    not, so the proxy keeps the rule. Plan says so; apply resets the ACL first."""
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    s3 = boto3.client("s3")
    s3.put_bucket_ownership_controls(Bucket=DEV, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket=DEV, ACL="public-read")
    code, out, _ = cli(capsys, "plan", "--env", "development")
    assert "its ACL grants AllUsers READ: apply resets it to private first" in out
    code, _, err = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 0, err
    assert real_aws.rules.refused == []
    grants = s3.get_bucket_acl(Bucket=DEV)["Grants"]
    assert [g["Grantee"].get("URI") for g in grants if g["Grantee"]["Type"] == "Group"] == []
    assert cli(capsys, "plan", "--env", "development", "--detailed-exitcode")[0] == 0
