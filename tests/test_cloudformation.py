"""Taking over what a CDK (CloudFormation) stack made, on an S3 that keeps AWS's rules.

The stack is a real moto CloudFormation stack (a bucket and a role, both DeletionPolicy: Retain, as CDK's
RemovalPolicy.RETAIN writes them). moto's CloudFormation tags nothing and its S3 refuses every `aws:` tag, so the
tests run behind tests/real_aws.py's proxy, which gives the stack's bucket the three `aws:cloudformation:*` tags
AWS gives it and refuses, as S3 does, a PutBucketTagging that drops them; it also answers DescribeStackResources
by PhysicalResourceId as AWS does (moto cannot), which is how a role, never tagged by CloudFormation, is traced to
its stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.helpers import STAGING_BUCKET, cli, plexus_cdk_bucket_access
from tests.real_aws import RealAwsProxy

STACK = "plexus-ml-training-staging"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def deploy_cdk_stack() -> str:
    """The CDK stack's bucket and role; returns the role's generated name (CloudFormation names it)."""
    template = {
        "Resources": {
            "TrainingBucket1A2B3C4D": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {"BucketName": STAGING_BUCKET, "VersioningConfiguration": {"Status": "Enabled"}},
            },
            "TrainingRole5F3E2A1B": {
                "Type": "AWS::IAM::Role",
                "DeletionPolicy": "Retain",
                "Properties": {"AssumeRolePolicyDocument": TRUST},
            },
        }
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    resources = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    return next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::IAM::Role")


def staging_manifest(tmp_path: Path, role: str | None = None) -> str:
    path = tmp_path / "staging.yaml"
    text = "version: 1\nenvironment: staging\nremoval_policy: retain\ntags:\n  project: plexus\n"
    if role:
        text += f"role:\n  name: {role}\n"
    path.write_text(text, encoding="utf-8")
    return str(path)


def bucket_tags() -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto3.client("s3").get_bucket_tagging(Bucket=STAGING_BUCKET)["TagSet"]}


def test_the_proxy_enforces_the_system_tag_rule_the_tool_must_respect(real_aws: RealAwsProxy) -> None:
    """The emulated rule bites: a tag set without the stack's tags is refused, as real S3 refuses it."""
    deploy_cdk_stack()
    real_aws.tag_like_cloudformation(STACK)
    s3 = boto3.client("s3")
    with pytest.raises(s3.exceptions.ClientError, match="System Tags cannot be removed by requester"):
        s3.put_bucket_tagging(Bucket=STAGING_BUCKET, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})


def test_adopt_waits_for_the_stack_to_let_go_then_keeps_its_system_tags(
    real_aws: RealAwsProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_cdk_stack()
    system = real_aws.tag_like_cloudformation(STACK)[STAGING_BUCKET]
    manifest = staging_manifest(tmp_path)

    code, out, _ = cli(capsys, "plan", manifest)
    assert code == 0
    foreign = "exists without plexus-infra ownership tags (foreign)"
    assert f"s3_bucket.{STAGING_BUCKET}  ({foreign}; managed by CloudFormation stack {STACK})" in out
    assert "aws:cloudformation" not in out  # AWS's tags are never shown as a change
    code, out, err = cli(capsys, "apply", manifest, "--adopt", "--auto-approve")
    assert code == 1 and out.count("\n") > 0
    assert err.splitlines() == [
        f"error: s3_bucket.{STAGING_BUCKET} is still managed by CloudFormation stack {STACK}; two tools writing it "
        "would undo each other. Set its DeletionPolicy to Retain (CDK: RemovalPolicy.RETAIN) and deploy, then delete "
        "the stack or remove the resource from it; then run apply --adopt"
    ]
    assert not any(k.startswith("plexus:") for k in bucket_tags())

    boto3.client("cloudformation").delete_stack(StackName=STACK)  # Retain: the bucket stays
    code, out, err = cli(capsys, "apply", manifest, "--adopt", "--auto-approve")
    assert code == 0, err
    tags = bucket_tags()
    assert {k: v for k, v in tags.items() if k.startswith("aws:")} == system
    assert tags["plexus:managed-by"] == "plexus-infra" and tags["project"] == "plexus"
    assert real_aws.rules.refused == []

    # No perpetual diff, and every later tag write keeps them.
    assert cli(capsys, "plan", manifest, "--detailed-exitcode")[0] == 0
    Path(manifest).write_text(Path(manifest).read_text().replace("project: plexus", "project: plexus-ml"))
    assert cli(capsys, "apply", manifest, "--auto-approve")[0] == 0
    assert bucket_tags()["project"] == "plexus-ml"
    assert {k: v for k, v in bucket_tags().items() if k.startswith("aws:")} == system
    assert cli(capsys, "plan", manifest, "--detailed-exitcode")[0] == 0
    assert real_aws.rules.refused == []


def test_a_role_the_stack_still_holds_is_refused_though_cloudformation_never_tagged_it(
    real_aws: RealAwsProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = deploy_cdk_stack()
    boto3.client("s3").delete_bucket(Bucket=STAGING_BUCKET)  # only the role is in question here
    manifest = staging_manifest(tmp_path, role)

    code, out, _ = cli(capsys, "plan", manifest)
    foreign = "exists without plexus-infra ownership tags (foreign)"
    assert f"iam_role.{role}  ({foreign}; managed by CloudFormation stack {STACK})" in out
    code, _, err = cli(capsys, "apply", manifest, "--adopt", "--auto-approve")
    assert code == 1 and f"iam_role.{role} is still managed by CloudFormation stack {STACK}" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []  # refused before any write

    boto3.client("cloudformation").delete_stack(StackName=STACK)
    code, _, err = cli(capsys, "apply", manifest, "--adopt", "--auto-approve")
    assert code == 0, err
    tags = {t["Key"]: t["Value"] for t in boto3.client("iam").list_role_tags(RoleName=role)["Tags"]}
    assert tags["plexus:environment"] == "staging"


def deploy_plexus_stack() -> str:
    """Plexus's own MLTrainingStack (infrastructure/stacks/ml_training_stack.py in AnthusAI/Plexus) for staging, as
    CloudFormation holds it: a versioned SSE-S3 bucket, Block Public Access, its two lifecycle rules, and a role
    with AmazonSageMakerFullAccess and the inline policy TrainingBucketAccess on the whole bucket. Returns the
    role's name."""
    access = plexus_cdk_bucket_access(STAGING_BUCKET)
    role = deploy_cdk_stack()
    # moto's CloudFormation makes the bucket and the role but applies few of their properties, and it stores an
    # inline policy from a template as a Python repr that no IAM client can parse; AWS applies all of them and
    # returns the policy as URL-encoded JSON. So the properties the template states are set here, as AWS sets them.
    s3, iam = boto3.client("s3"), boto3.client("iam")
    s3.put_bucket_encryption(
        Bucket=STAGING_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    flags = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    s3.put_public_access_block(Bucket=STAGING_BUCKET, PublicAccessBlockConfiguration=flags)
    ia, glacier = {"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}
    rules = [
        {"ID": "TransitionOldTrainingData", "Status": "Enabled", "Filter": {"Prefix": "training-data/"},
         "Transitions": [ia, glacier]},
        {"ID": "TransitionOldModels", "Status": "Enabled", "Filter": {"Prefix": "models/"},
         "Transitions": [{"Days": 90, "StorageClass": "STANDARD_IA"}]},
    ]  # fmt: skip
    s3.put_bucket_lifecycle_configuration(Bucket=STAGING_BUCKET, LifecycleConfiguration={"Rules": rules})
    iam.update_role(RoleName=role, Description="Role for SageMaker training jobs in staging")
    # The tests' moto loads none of AWS's managed policies (seconds at every reset): one of the same name stands in.
    full_access = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}],
    }
    policy = iam.create_policy(PolicyName="AmazonSageMakerFullAccess", PolicyDocument=json.dumps(full_access))
    iam.attach_role_policy(RoleName=role, PolicyArn=policy["Policy"]["Arn"])
    iam.put_role_policy(RoleName=role, PolicyName="TrainingBucketAccess", PolicyDocument=json.dumps(access))
    return role


def test_plexus_own_cdk_stack_is_imported_and_adopted_without_losing_a_grant(
    real_aws: RealAwsProxy, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = deploy_plexus_stack()
    system = real_aws.tag_like_cloudformation(STACK)[STAGING_BUCKET]
    code, out, err = cli(capsys, "import", "staging", "--bucket", STAGING_BUCKET, "--role", role, "--force")
    assert code == 0, err
    assert f"still managed by CloudFormation stack {STACK}" in out
    manifest = "environments/staging.yaml"

    code, out, _ = cli(capsys, "plan", manifest, "--json")
    changes = {c["address"]: c for c in json.loads(out)["resource_changes"] if c["actions"] != ["no-op"]}
    # Adopting adds the ownership tags, the outputs, BucketOwnerEnforced (moto has none; AWS's default since 2023),
    # the trust policy's confused-deputy conditions and the tool's own inline policy, and takes nothing away.
    assert {address.split(".")[0] for address in changes} == {
        "ssm_outputs",
        "s3_bucket",
        "s3_bucket_ownership_controls",
        "iam_role",
        "iam_role_inline_policies",
    }
    inline = changes[f"iam_role_inline_policies.{role}"]
    assert set(inline["after"]["policies"]) - set(inline["before"]["policies"]) == {"plexus-training-access"}
    assert cli(capsys, "apply", manifest, "--adopt", "--auto-approve")[0] == 1  # the stack still holds them

    boto3.client("cloudformation").delete_stack(StackName=STACK)
    code, _, err = cli(capsys, "apply", manifest, "--adopt", "--auto-approve")
    assert code == 0, err
    assert cli(capsys, "plan", manifest, "--detailed-exitcode")[0] == 0
    iam = boto3.client("iam")
    assert sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]) == [
        "TrainingBucketAccess",
        "plexus-training-access",
    ]
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    assert attached == ["arn:aws:iam::123456789012:policy/AmazonSageMakerFullAccess"]
    assert {k: v for k, v in bucket_tags().items() if k.startswith("aws:")} == system
    assert real_aws.rules.refused == []
