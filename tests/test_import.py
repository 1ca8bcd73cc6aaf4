"""`plexus-infra import`: a manifest written from an environment that exists already, as a CDK stack leaves one
(bucket `plexus-ml-{env}-training`, a role CloudFormation named, lifecycle rules in CDK's shape)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from plexus_infra.core.aws import Identity
from plexus_infra.resources.role import INLINE_POLICY_NAME, training_access_policy, trust_policy
from plexus_infra.sandbox import Sandbox
from tests.helpers import cli, plexus_cdk_bucket_access

ACCOUNT = "123456789012"
BUCKET = "plexus-ml-staging-training"
ROLE = "plexus-ml-training-staging-TrainingRole-1XJ3K2L9"
TAGS = [{"Key": "project", "Value": "plexus"}, {"Key": "team", "Value": "ml"}]
CDK_RULES = [
    {
        "ID": "TransitionOldTrainingData",
        "Status": "Enabled",
        "Prefix": "training-data/",
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
    },
    {
        "ID": "TransitionOldModels",
        "Status": "Enabled",
        "Prefix": "models/",
        "Transitions": [{"Days": 90, "StorageClass": "STANDARD_IA"}],
    },
]


def make_environment(*, rules: list[dict] = CDK_RULES, inline: dict | None = None, role_tags: list = TAGS) -> None:
    """What the CDK stack made, with boto3: moto gives new buckets none of S3's 2023 defaults, so the test sets
    them as AWS would have (SSE-S3, all four public access flags, BucketOwnerEnforced)."""
    s3, iam = boto3.client("s3"), boto3.client("iam")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    flags = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=flags)
    s3.put_bucket_ownership_controls(
        Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": TAGS})
    iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps(trust_policy("aws", "us-east-1", ACCOUNT)),
        Description="Role for SageMaker training jobs in staging",
        Tags=role_tags,
    )
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    for name, document in (
        inline or {INLINE_POLICY_NAME: training_access_policy("aws", "us-east-1", ACCOUNT, bucket_arn, ())}
    ).items():
        iam.put_role_policy(RoleName=ROLE, PolicyName=name, PolicyDocument=json.dumps(document))


def test_an_imported_manifest_validates_and_plans_nothing_but_taking_ownership(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_environment()
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    code, out, err = cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", role_arn, "--force")
    assert code == 0, err
    written = Path("environments/staging.yaml")
    assert f"Wrote {written} for staging" in out
    text = written.read_text()
    assert text.startswith(f"# Imported by `plexus-infra import staging --bucket {BUCKET} --role {ROLE}` on ")
    assert "# Note: the bucket has no TLS-only" not in text
    data = yaml.safe_load(text)
    assert data == {
        "version": 1,
        "environment": "staging",
        "account_id": ACCOUNT,
        "tags": {"project": "plexus", "team": "ml"},
        "bucket": {
            "name": BUCKET,
            "enforce_tls": False,
            "lifecycle": {
                "abort_incomplete_multipart_upload_days": None,
                "noncurrent_version_expiration_days": None,
                "rules": [
                    {
                        "id": "TransitionOldModels",
                        "prefix": "models/",
                        "transitions": [{"days": 90, "storage_class": "STANDARD_IA"}],
                    },
                    {
                        "id": "TransitionOldTrainingData",
                        "prefix": "training-data/",
                        "transitions": [
                            {"days": 30, "storage_class": "STANDARD_IA"},
                            {"days": 90, "storage_class": "GLACIER"},
                        ],
                    },
                ],
            },
        },
        "role": {"name": ROLE, "description": "Role for SageMaker training jobs in staging"},
    }

    code, out, _ = cli(capsys, "plan", str(written), "--json")
    assert code == 0
    changes = {c["kind"]: c for c in json.loads(out)["resource_changes"] if c["actions"] != ["no-op"]}
    assert set(changes) == {"s3_bucket", "iam_role", "ssm_outputs"}, changes
    for kind in ("s3_bucket", "iam_role"):
        assert changes[kind]["changed_attributes"] == ["tags"] and changes[kind]["foreign"]
        added = {k for k, v in changes[kind]["after"]["tags"].items() if changes[kind]["before"]["tags"].get(k) != v}
        assert added <= {"plexus:managed-by", "plexus:environment", "plexus:removal-policy"}
    assert changes["ssm_outputs"]["actions"] == ["create"]  # published for the first time

    assert cli(capsys, "apply", str(written), "--adopt", "--auto-approve")[0] == 0
    assert cli(capsys, "plan", str(written), "--detailed-exitcode")[0] == 0


def test_what_a_manifest_cannot_state_is_refused_one_line_each_and_nothing_is_written(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tagged = {"ID": "ExpireScratch", "Status": "Enabled", "Filter": {"Tag": {"Key": "scratch", "Value": "yes"}}}
    not_resource = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Rest", "Effect": "Allow", "Action": "s3:*", "NotResource": f"arn:aws:s3:::{BUCKET}/*"}],
    }
    make_environment(
        rules=[*CDK_RULES, {**tagged, "Expiration": {"Days": 3}}],
        inline={"EverythingElse": not_resource},
        role_tags=TAGS[:1],
    )
    before = Path("environments/staging.yaml").read_text()
    code, out, err = cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", ROLE, "--force")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert lines[0] == (
        "error: import staging: cannot import: tag team = 'ml' is on the bucket only; a manifest's tags go on every "
        "resource (tag the role the same way, or remove it)"
    )
    assert lines[1].startswith("error: import staging: cannot import: lifecycle rule ExpireScratch uses Tag")
    assert lines[2] == (
        "error: import staging: cannot import: the role's inline policy EverythingElse: statement Rest: "
        "Additional properties are not allowed ('NotResource' was unexpected)"
    )
    assert Path("environments/staging.yaml").read_text() == before  # nothing written, even with --force


def test_an_existing_file_is_overwritten_only_with_force(sandbox: Sandbox, workdir: Path, capsys) -> None:
    make_environment()
    before = Path("environments/staging.yaml").read_text()
    code, _, err = cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", ROLE)
    assert (
        code == 1
        and err == "error: environments/staging.yaml exists; give --force to overwrite it, or --out another file\n"
    )
    assert Path("environments/staging.yaml").read_text() == before
    assert cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", ROLE, "--force")[0] == 0
    assert Path("environments/staging.yaml").read_text() != before


def test_an_import_of_a_stack_that_still_manages_the_bucket_says_what_adopt_will_need(
    real_aws, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {
        "Resources": {
            "TrainingBucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "Properties": {"BucketName": BUCKET},
            }
        }
    }
    boto3.client("cloudformation").create_stack(
        StackName="plexus-ml-training-staging", TemplateBody=json.dumps(template)
    )
    real_aws.tag_like_cloudformation("plexus-ml-training-staging")
    make_environment_role_only()
    code, out, err = cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", ROLE, "--out", "imported.yaml")
    assert code == 0, err
    assert "note: still managed by CloudFormation stack plexus-ml-training-staging: apply --adopt refuses" in out
    assert "aws:cloudformation" not in Path("imported.yaml").read_text()


def make_environment_role_only() -> None:
    iam = boto3.client("iam")
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust_policy("aws", "us-east-1", ACCOUNT)))


def test_the_mapping_is_pure_and_a_missing_bucket_is_one_line() -> None:
    from plexus_infra.core.errors import PlexusError
    from plexus_infra.importer import Source, manifest_data

    source = Source("staging", BUCKET, ROLE, "us-east-1", Identity(ACCOUNT, "arn", "aws"))
    with pytest.raises(PlexusError, match="no such bucket"):
        manifest_data({"s3_bucket": None, "iam_role": {}}, source)


def test_the_cdk_stacks_own_inline_policy_is_kept_and_plans_no_change(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plexus's CDK stack gives its training role an inline policy of its own (TrainingBucketAccess, on the whole
    bucket): import states it as role.inline_policies, so adopting changes none of the role's grants."""
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    cdk_inline = plexus_cdk_bucket_access(BUCKET)
    ours = training_access_policy("aws", "us-east-1", ACCOUNT, bucket_arn, ())
    make_environment(inline={INLINE_POLICY_NAME: ours, "TrainingBucketAccess": cdk_inline})
    code, out, err = cli(capsys, "import", "staging", "--bucket", BUCKET, "--role", ROLE, "--force")
    assert code == 0, err
    assert "the role's other inline policies (TrainingBucketAccess) are kept as the manifest's" in out
    written = Path("environments/staging.yaml")
    assert yaml.safe_load(written.read_text())["role"]["inline_policies"] == {
        "TrainingBucketAccess": cdk_inline["Statement"]
    }
    code, out, _ = cli(capsys, "plan", str(written), "--json")
    changes = {c["kind"] for c in json.loads(out)["resource_changes"] if c["actions"] != ["no-op"]}
    assert changes == {"s3_bucket", "iam_role", "ssm_outputs"}  # ownership tags and the outputs only

    assert cli(capsys, "apply", str(written), "--adopt", "--auto-approve")[0] == 0
    assert cli(capsys, "plan", str(written), "--detailed-exitcode")[0] == 0
    live = boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName="TrainingBucketAccess")["PolicyDocument"]
    assert live["Statement"][0]["Resource"] == [bucket_arn, f"{bucket_arn}/*"]

    # Dropped from the manifest, it is deleted by the next apply, and the plan says so first.
    data = yaml.safe_load(written.read_text())
    del data["role"]["inline_policies"]
    written.write_text(yaml.safe_dump(data))
    code, out, _ = cli(capsys, "plan", str(written))
    assert code == 0 and "- policies.TrainingBucketAccess" in out
    assert cli(capsys, "apply", str(written), "--auto-approve")[0] == 0
    assert boto3.client("iam").list_role_policies(RoleName=ROLE)["PolicyNames"] == [INLINE_POLICY_NAME]
