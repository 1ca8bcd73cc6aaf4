"""Out-of-band drift (console edits, made here with boto3) shows in plan as an ordinary change back to the
manifest, naming the resource and the attribute, and apply repairs it writing only the drifted resource."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

# `aws` and `recorder` are fixtures shared with the CLI tests.
from tests.helpers import DEV_BUCKET, DEV_ROLE, AwsClients, Recorder, cli

B, R = DEV_BUCKET, DEV_ROLE
HAND_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Drift:
    """One console edit: what to do, where it shows in the plan, and the only writes that repair it."""

    make: Callable[[AwsClients], Any]
    address: str
    shown: tuple[str, ...]  # text that must appear in the plan (attribute names, values)
    repair: frozenset[str]  # the write operations apply may use


def _add_statement(live: AwsClients) -> None:
    policy = json.loads(live.s3.get_bucket_policy(Bucket=B)["Policy"])
    policy["Statement"].append(
        {
            "Sid": "ByHand",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{B}/*",
        }
    )
    live.s3.put_bucket_policy(Bucket=B, Policy=json.dumps(policy))


def _retag_bucket(live: AwsClients) -> None:
    tags = live.s3.get_bucket_tagging(Bucket=B)["TagSet"]
    for tag in tags:
        if tag["Key"] == "cost-center":
            tag["Value"] = "ml-other"
    live.s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": tags})


def _attach_managed(live: AwsClients) -> None:
    arn = live.iam.create_policy(PolicyName="by-hand", PolicyDocument=json.dumps(HAND_POLICY))["Policy"]["Arn"]
    live.iam.attach_role_policy(RoleName=R, PolicyArn=arn)


def _trust_ec2(live: AwsClients) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    live.iam.update_assume_role_policy(RoleName=R, PolicyDocument=json.dumps(trust))


def _edit_lifecycle(live: AwsClients) -> None:
    rules = live.s3.get_bucket_lifecycle_configuration(Bucket=B)["Rules"]
    for rule in rules:
        if rule["ID"] == "expire-models":
            rule["Expiration"] = {"Days": 365}
    live.s3.put_bucket_lifecycle_configuration(Bucket=B, LifecycleConfiguration={"Rules": rules})


KMS = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "1234abcd-12ab-34cd-56ef-1234567890ab"}
LOOSE_PAB = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": True,
}

DRIFTS = {
    "versioning_suspended": Drift(
        lambda live: live.s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={"Status": "Suspended"}),
        f"s3_bucket_versioning.{B}",
        ('status: "Suspended" → "Enabled"',),
        frozenset({"s3:PutBucketVersioning"}),
    ),
    "encryption_deleted": Drift(
        lambda live: live.s3.delete_bucket_encryption(Bucket=B),
        f"s3_bucket_encryption.{B}",
        ('algorithm = "AES256"',),
        frozenset({"s3:PutBucketEncryption"}),
    ),
    "encryption_changed_to_kms": Drift(
        lambda live: live.s3.put_bucket_encryption(
            Bucket=B, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": KMS}]}
        ),
        f"s3_bucket_encryption.{B}",
        ('algorithm: "aws:kms" → "AES256"', "kms_key_id"),
        frozenset({"s3:PutBucketEncryption"}),
    ),
    "public_access_block_loosened": Drift(
        lambda live: live.s3.put_public_access_block(Bucket=B, PublicAccessBlockConfiguration=LOOSE_PAB),
        f"s3_bucket_public_access_block.{B}",
        ("BlockPublicPolicy: false → true",),
        frozenset({"s3:PutPublicAccessBlock"}),
    ),
    "ownership_controls_changed": Drift(
        lambda live: live.s3.put_bucket_ownership_controls(
            Bucket=B, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        ),
        f"s3_bucket_ownership_controls.{B}",
        ('object_ownership: "ObjectWriter" → "BucketOwnerEnforced"',),
        frozenset({"s3:PutBucketOwnershipControls"}),
    ),
    "lifecycle_rule_edited": Drift(
        _edit_lifecycle,
        f"s3_bucket_lifecycle.{B}",
        ("rules.expire-models.expiration_days: 365 → 30",),
        frozenset({"s3:PutBucketLifecycleConfiguration"}),
    ),
    "lifecycle_removed": Drift(
        lambda live: live.s3.delete_bucket_lifecycle(Bucket=B),
        f"s3_bucket_lifecycle.{B}",
        ("rules.expire-training-data.expiration_days = 7",),
        frozenset({"s3:PutBucketLifecycleConfiguration"}),
    ),
    "bucket_policy_deleted": Drift(
        lambda live: live.s3.delete_bucket_policy(Bucket=B),
        f"s3_bucket_policy.{B}",
        ("+ policy:", "DenyInsecureTransport"),
        frozenset({"s3:PutBucketPolicy"}),
    ),
    "bucket_policy_statement_added": Drift(
        _add_statement,
        f"s3_bucket_policy.{B}",
        ("~ policy:", '-      "Sid": "ByHand"'),
        frozenset({"s3:PutBucketPolicy"}),
    ),
    "bucket_user_tag_changed": Drift(
        _retag_bucket,
        f"s3_bucket.{B}",
        ('tags.cost-center: "ml-other" → "ml-dev"',),
        frozenset({"s3:PutBucketTagging"}),
    ),
    # A teammate's tag edit (PutBucketTagging replaces the whole set; an empty set is DeleteBucketTagging) leaves the
    # resource this environment's: its outputs still name it, and a plain apply puts the tags back.
    "bucket_tags_replaced_by_one_foreign_tag": Drift(
        lambda live: live.s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": [{"Key": "cost", "Value": "finance"}]}),
        f"s3_bucket.{B}",
        ('- tags.cost = "finance"', '+ tags.plexus:managed-by = "plexus-infra"', "outputs name it"),
        frozenset({"s3:PutBucketTagging"}),
    ),
    "bucket_tags_deleted": Drift(
        lambda live: live.s3.delete_bucket_tagging(Bucket=B),
        f"s3_bucket.{B}",
        ('+ tags.plexus:environment = "development"', '+ tags.plexus:removal-policy = "destroy"'),
        frozenset({"s3:PutBucketTagging"}),
    ),
    "role_tags_removed": Drift(
        lambda live: live.iam.untag_role(
            RoleName=R, TagKeys=[t["Key"] for t in live.iam.list_role_tags(RoleName=R)["Tags"]]
        ),
        f"iam_role.{R}",
        ('+ tags.plexus:managed-by = "plexus-infra"', "outputs name it"),
        frozenset({"iam:TagRole"}),
    ),
    "role_trust_policy_changed": Drift(
        _trust_ec2,
        f"iam_role.{R}",
        ("~ trust_policy:", '-        "Service": "ec2.amazonaws.com"'),
        frozenset({"iam:UpdateAssumeRolePolicy"}),
    ),
    "role_description_changed": Drift(
        lambda live: live.iam.update_role(RoleName=R, Description="edited in the console"),
        f"iam_role.{R}",
        ('description: "edited in the console" → "SageMaker training execution role for Plexus development"',),
        frozenset({"iam:UpdateRole"}),
    ),
    "inline_policy_added_by_hand": Drift(
        lambda live: live.iam.put_role_policy(RoleName=R, PolicyName="by-hand", PolicyDocument=json.dumps(HAND_POLICY)),
        f"iam_role_inline_policies.{R}",
        ("- policies.by-hand:",),
        frozenset({"iam:DeleteRolePolicy"}),
    ),
    "managed_policy_attached_by_hand": Drift(
        _attach_managed,
        f"iam_role_policy_attachments.{R}",
        ('managed_policy_arns: ["arn:aws:iam::123456789012:policy/by-hand"] → []',),
        frozenset({"iam:DetachRolePolicy"}),
    ),
    "ssm_output_value_changed": Drift(
        lambda live: live.ssm.put_parameter(
            Name="/plexus/development/training-bucket-name", Value="wrong", Type="String", Overwrite=True
        ),
        "ssm_outputs.development",
        ('/plexus/development/training-bucket-name.value: "wrong" → "plexus-development-training"',),
        frozenset({"ssm:PutParameter"}),
    ),
    "ssm_output_deleted": Drift(
        lambda live: live.ssm.delete_parameter(Name="/plexus/development/training-bucket-arn"),
        "ssm_outputs.development",
        ('+ /plexus/development/training-bucket-arn.value = "arn:aws:s3:::plexus-development-training"',),
        frozenset({"ssm:PutParameter"}),
    ),
}


@pytest.mark.parametrize("name", sorted(DRIFTS))
def test_drift_shows_in_plan_and_apply_repairs_only_it(
    name: str,
    aws: AwsClients,
    recorder: Recorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    drift = DRIFTS[name]
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    drift.make(aws)

    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 2
    assert f"  ~ {drift.address}" in out or f"  + {drift.address}" in out, out
    for text in drift.shown:
        assert text in out, f"{text!r} not in plan:\n{out}"
    changed = [line for line in out.splitlines() if line.startswith(("  ~ ", "  + ", "  - "))]
    assert len(changed) == 1, f"only {drift.address} should differ:\n{out}"

    recorder.clear()
    code, out, err = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 0, err
    assert recorder.write_operations == drift.repair
    assert {w.target for w in recorder.writes} <= {B, R, *_parameter_names()}
    assert len(recorder.writes) == 1, recorder.writes

    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 0, out
    assert "No changes." in out


def _parameter_names() -> set[str]:
    return {f"/plexus/development/{key}" for key in ("training-bucket-name", "training-bucket-arn")}


def _strip_ownership(live: AwsClients) -> None:
    """What a teammate's cost-tagging does: the bucket's set replaced by one tag, the role's tags removed."""
    live.s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": [{"Key": "cost", "Value": "finance"}]})
    live.iam.untag_role(RoleName=R, TagKeys=[t["Key"] for t in live.iam.list_role_tags(RoleName=R)["Tags"]])


def _attach_administrator(live: AwsClients) -> None:
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    arn = live.iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=json.dumps(admin))["Policy"]["Arn"]
    live.iam.attach_role_policy(RoleName=R, PolicyArn=arn)


SECURITY_DRIFTS = {
    "trust_widened_to_ec2": (_trust_ec2, f"iam_role.{R}", "iam:UpdateAssumeRolePolicy"),
    "inline_policy_granting_iam": (
        lambda live: live.iam.put_role_policy(
            RoleName=R,
            PolicyName="escalate",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
            ),
        ),
        f"iam_role_inline_policies.{R}",
        "iam:DeleteRolePolicy",
    ),
    "administrator_attached": (_attach_administrator, f"iam_role_policy_attachments.{R}", "iam:DetachRolePolicy"),
    "ssm_output_changed": (DRIFTS["ssm_output_value_changed"].make, "ssm_outputs.development", "ssm:PutParameter"),
}


@pytest.mark.parametrize("name", sorted(SECURITY_DRIFTS))
def test_a_security_repair_is_never_blocked_by_a_tag_edit(
    name: str, aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    make, address, repair = SECURITY_DRIFTS[name]
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    _strip_ownership(aws)
    make(aws)

    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 2 and f"  ~ {address}" in out and "foreign" not in out, out
    recorder.clear()
    code, out, err = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 0, err
    assert repair in recorder.write_operations
    assert recorder.write_operations <= {repair, "s3:PutBucketTagging", "iam:TagRole"}, recorder.write_operations
    assert cli(capsys, "plan", "--env", "development", "--detailed-exitcode")[0] == 0


def test_at_least_eight_kinds_of_drift_are_covered() -> None:
    assert len({drift.address.split(".")[0] for drift in DRIFTS.values()}) >= 8
