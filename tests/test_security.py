"""Security proof: the generated IAM policies lint clean and grant only what training needs; the live end state
has the secure defaults; credentials never reach output, logs or saved plans."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from plexus_infra.core.aws import Identity
from plexus_infra.manifest.validate import load_environment
from plexus_infra.resources.base import Context
from plexus_infra.resources.bucket import bucket_arn
from plexus_infra.resources.role import INLINE_POLICY_NAME, IamRole, IamRoleInlinePolicies, role_arn
from plexus_infra.sandbox import Sandbox
from tests.helpers import ROOT, run_cli

ENVIRONMENTS = ("development", "staging", "production")
ACCOUNT = "123456789012"
PREFIXES = ("training-data", "models", "training-code")
# Every action the inline policy may grant, by what it is for.
ALLOWED_ACTIONS = {
    "bucket": {"s3:GetBucketLocation", "s3:ListBucket"},
    "objects": {"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"},
    "logs": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"},
    "metrics": {"cloudwatch:PutMetricData"},
    "ecr": {"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage"}
    | {"ecr:GetDownloadUrlForLayer"},
    "kms": {"kms:Decrypt", "kms:GenerateDataKey"},
}
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Community auditors flag any action that hands out credentials. These two are what a SageMaker role is for:
# SageMaker assuming the role, and the ECR login token a training job needs to pull its image.
INHERENT_CREDENTIAL_ACTIONS = {"sts:assumerole", "ecr:getauthorizationtoken"}
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPLEXUSFAKEKEYID42",
    "AWS_SECRET_ACCESS_KEY": "plexusFAKEsecret/DoNotLeak+0123456789abcdefXYZ",
    "AWS_SESSION_TOKEN": "plexusFAKEsessionTOKEN//DoNotLeak==",
}


def analyze(document: dict[str, Any], community: bool) -> list[Any]:
    """parliament's findings for one document (parliament needs setuptools < 81 for pkg_resources)."""
    from parliament import analyze_policy_string

    return analyze_policy_string(json.dumps(document), include_community_auditors=community).findings


def context(name: str, kms_key_arn: str | None = None) -> Context:
    env = load_environment(str(ROOT / "environments" / f"{name}.yaml"))
    return Context(env, Identity(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/ci", "aws"), kms_key_arn)


def inline_policy(ctx: Context) -> dict[str, Any]:
    return IamRoleInlinePolicies(ctx).desired()["policies"][INLINE_POLICY_NAME]


def trust_as_resource_policy(ctx: Context) -> dict[str, Any]:
    """parliament rejects statements without Resource, and a trust policy has none: its resource is implicitly
    the role itself. Naming it lets parliament check action, principal and condition keys for real."""
    document = copy.deepcopy(IamRole(ctx).desired()["trust_policy"])
    for statement in document["Statement"]:
        statement["Resource"] = role_arn(ctx)
    return document


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def overreach(document: dict[str, Any], ctx: Context) -> list[str]:
    """Everything the policy grants beyond the bucket, its three prefixes, SageMaker logs/metrics and ECR pull."""
    bucket = bucket_arn(ctx)
    log_groups = f"arn:aws:logs:{ctx.env.region}:{ACCOUNT}:log-group:/aws/sagemaker/"
    ecr = tuple(ctx.env.role.ecr_repository_arns) or (f"arn:aws:ecr:{ctx.env.region}:*:repository/",)
    allowed_resources = {
        "bucket": lambda r: r == bucket,
        "objects": lambda r: any(r == f"{bucket}/{prefix}/*" for prefix in PREFIXES),
        "logs": lambda r: r.startswith(log_groups),
        "metrics": lambda r: r == "*",
        "ecr": lambda r: r == "*" or r.startswith(ecr),
        "kms": lambda r: r == ctx.kms_key_arn,
    }
    problems = []
    for statement in document["Statement"]:
        sid = statement.get("Sid", "?")
        if statement.get("Effect") != "Allow" or {"NotAction", "NotResource", "Principal"} & statement.keys():
            problems.append(f"{sid}: not a plain Allow statement")
            continue
        actions = set(as_list(statement["Action"]))
        purposes = [p for p, allowed in ALLOWED_ACTIONS.items() if actions <= allowed]
        if not purposes:
            problems.append(f"{sid}: actions {sorted(actions)} outside the allow-list")
            continue
        for resource in as_list(statement["Resource"]):
            if not allowed_resources[purposes[0]](resource):
                problems.append(f"{sid}: resource {resource}")
        if actions & {"ecr:BatchGetImage"} and "*" in as_list(statement["Resource"]):
            problems.append(f"{sid}: image layers on every repository")
        if purposes[0] == "metrics" and statement.get("Condition") != {
            "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
        }:
            problems.append(f"{sid}: metrics outside the SageMaker namespace")
    return problems


@pytest.mark.parametrize("key", [None, KEY_ARN], ids=["sse-s3", "customer-key"])
@pytest.mark.parametrize("name", ENVIRONMENTS)
@pytest.mark.parametrize("community", [False, True])
def test_generated_policies_pass_parliament(name: str, community: bool, key: str | None) -> None:
    ctx = context(name, key)
    for document in (trust_as_resource_policy(ctx), inline_policy(ctx)):
        findings = [
            f
            for f in analyze(document, community)
            if not (
                f.issue == "CREDENTIALS_EXPOSURE" and set(f.location.get("actions", ())) <= INHERENT_CREDENTIAL_ACTIONS
            )
        ]
        assert findings == [], [(f.issue, f.detail, f.location) for f in findings]


def test_parliament_would_catch_a_broken_policy() -> None:
    document = inline_policy(context("development"))
    document["Statement"].append({"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"})
    assert [f.issue for f in analyze(document, community=False)] == ["UNKNOWN_ACTION"]


def test_a_customer_key_is_granted_for_reading_and_writing_through_s3_only() -> None:
    statement = next(
        s for s in inline_policy(context("staging", KEY_ARN))["Statement"] if s["Sid"] == "TrainingBucketKey"
    )
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and statement["Resource"] == KEY_ARN
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert overreach(inline_policy(context("staging", KEY_ARN)), context("staging", KEY_ARN)) == []
    assert not any(s["Sid"] == "TrainingBucketKey" for s in inline_policy(context("staging"))["Statement"])


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_inline_policy_grants_only_the_bucket_prefixes_logs_metrics_and_ecr_pull(name: str) -> None:
    ctx = context(name)
    assert overreach(inline_policy(ctx), ctx) == []


@pytest.mark.parametrize(
    "widen",
    [
        lambda s: s[1].update(Resource="arn:aws:s3:::plexus-development-training/*"),
        lambda s: s[0].update(Resource="arn:aws:s3:::*"),
        lambda s: s[1]["Action"].append("s3:PutBucketPolicy"),
        lambda s: s[2].update(Resource="*"),
        lambda s: s[3].pop("Condition"),
        lambda s: s.append({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}),
        lambda s: s.append({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
    ],
)
def test_the_overreach_check_catches_a_widened_policy(widen: Any) -> None:
    ctx = context("development")
    document = inline_policy(ctx)
    widen(document["Statement"])
    assert overreach(document, ctx) != []


def test_live_end_state_has_the_secure_defaults(sandbox: Sandbox) -> None:
    assert run_cli("apply", "--auto-approve", "--env", "development").returncode == 0
    s3, iam = boto3.client("s3"), boto3.client("iam")
    bucket, role = "plexus-development-training", "plexus-development-sagemaker-training"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(as_list(deny[0]["Resource"])) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    assert deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:*"},
    }


def leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def test_credentials_never_reach_output_logs_or_saved_plans(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = str(ROOT / "environments" / "development.yaml")
    saved = tmp_path / "plan.json"
    denied = {"PLEXUS_TEST_FAULTS": json.dumps({"deny": ["iam:PutRolePolicy"]}), "PYTHONPATH": str(ROOT)}
    runs = [
        run_cli("plan", "--json", manifest, env=SECRETS, cwd=tmp_path),
        run_cli("plan", "--out", str(saved), manifest, env=SECRETS, cwd=tmp_path),
        run_cli(
            "--debug",
            "apply",
            "--auto-approve",
            "--stats",
            manifest,
            env={**SECRETS, **denied},
            cwd=tmp_path,
            module="tests.faults",
        ),
        run_cli("apply", "--auto-approve", "--stats", manifest, env=SECRETS, cwd=tmp_path),
        run_cli("outputs", "--json", manifest, env=SECRETS, cwd=tmp_path),
        run_cli("--debug", "plan", manifest, env={**SECRETS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, cwd=tmp_path),
    ]
    codes = [r.returncode for r in runs]
    assert codes[:2] == [0, 0] and codes[3:5] == [0, 0] and codes[2] != 0 and codes[5] != 0, codes
    assert "Traceback" in runs[2].stderr and "Traceback" in runs[5].stderr  # --debug really showed internals
    assert saved.exists() and saved.with_suffix(".txt").exists()
    texts = [r.stdout + r.stderr for r in runs] + [
        p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
    ]
    assert [leaks(text) for text in texts if leaks(text)] == []
