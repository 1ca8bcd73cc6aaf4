"""Several environments in one run, and several accounts: development and staging in one account, production in
its own, reached by assuming a deploy role (moto keeps accounts apart by the credentials an AssumeRole returns)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from plexus_infra.sandbox import Sandbox
from tests.helpers import cli

PRODUCTION_ACCOUNT = "210987654321"
DEPLOY_ROLE = f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/plexus-deploy"


def production_elsewhere() -> None:
    """environments/production.yaml, as a team with a production account of its own writes it."""
    path = Path("environments/production.yaml")
    text = path.read_text().replace(
        "environment: production\n",
        f'environment: production\naccount_id: "{PRODUCTION_ACCOUNT}"\nassume_role_arn: {DEPLOY_ROLE}\n'
        "external_id: plexus-ci\n",
    )
    path.write_text(text)


def test_plan_all_plans_every_environment_each_in_its_own_account(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    production_elsewhere()
    # A role of production's name in the default account: the production plan must not see it.
    boto3.client("iam").create_role(RoleName="plexus-production-sagemaker-training", AssumeRolePolicyDocument="{}")
    code, out, err = cli(capsys, "plan", "--all", "--detailed-exitcode", "--stats")
    assert code == 2, err
    assert f"Plan for production (environments/production.yaml), account {PRODUCTION_ACCOUNT}, us-east-1" in out
    assert "  + iam_role.plexus-production-sagemaker-training  (does not exist)" in out
    summary = out[out.index("Summary of 3 environments") :].splitlines()
    assert summary[1].split() == [
        "environment",
        "account",
        "region",
        "add",
        "change",
        "destroy",
        "drift",
        "data",
        "loss",
        "status",
    ]
    assert [line.split()[:3] for line in summary[2:]] == [
        ["development", "123456789012", "us-east-1"],
        ["production", PRODUCTION_ACCOUNT, "us-east-1"],
        ["staging", "123456789012", "us-east-1"],
    ]
    # One identity call per set of credentials, and at most 18 calls per environment besides.
    calls = int(err.split("AWS API calls: ")[1].split()[0])
    assert calls <= 3 * 17 + 2, err

    documents = json.loads(cli(capsys, "plan", "--all", "--json")[1])
    assert [(d["environment"], d["account"]) for d in documents] == [
        ("development", "123456789012"),
        ("production", PRODUCTION_ACCOUNT),
        ("staging", "123456789012"),
    ]

    assert cli(capsys, "apply", "--env", "production", "--auto-approve")[0] == 0
    production = boto3.client("sts").assume_role(RoleArn=DEPLOY_ROLE, RoleSessionName="check")["Credentials"]
    iam = boto3.client(
        "iam",
        aws_access_key_id=production["AccessKeyId"],
        aws_secret_access_key=production["SecretAccessKey"],
        aws_session_token=production["SessionToken"],
    )
    assert iam.get_role(RoleName="plexus-production-sagemaker-training")["Role"]["Arn"].startswith(
        f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/"
    )
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="plexus-production-sagemaker-training")["Tags"]}
    assert tags["plexus:environment"] == "production"
    assert boto3.client("iam").list_role_tags(RoleName="plexus-production-sagemaker-training")["Tags"] == []


def test_a_role_that_cannot_be_assumed_fails_its_environment_only_naming_both(
    real_aws, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto lets anyone assume any role; the proxy refuses this one as AWS refuses a trust policy that does not
    admit the caller."""
    production_elsewhere()
    real_aws.rules.unassumable_roles.add(DEPLOY_ROLE)
    code, out, err = cli(capsys, "plan", "--all")
    assert code == 1
    assert "Plan for development" in out and "Plan for staging" in out and "Plan for production" not in out
    assert err.splitlines() == [
        f"error: production (environments/production.yaml): sts:AssumeRole role {DEPLOY_ROLE}: AccessDenied: User: "
        f"arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole on resource: {DEPLOY_ROLE} "
        "(check the role's trust policy, the external_id and the credentials that assume it)"
    ]
    row = next(line.split() for line in out.splitlines() if line.startswith("production "))
    assert row[1] == "-" and row[-1] == "failed"


def test_one_bad_manifest_is_reported_and_no_environment_is_touched(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str], recorder
) -> None:
    Path("environments/staging.yaml").write_text("version: 1\nenvironment: staging\nregoin: us-east-1\n")
    code, out, err = cli(capsys, "plan", "--all")
    assert code == 1 and out == ""
    assert err.startswith("error: environments/staging.yaml:3:1: regoin: unknown field")
    assert err.splitlines()[-1] == (
        "error: plexus-infra: no AWS call was made for any of the 3 environments: each manifest must validate first"
    )
    assert recorder.requests == []


def test_two_manifests_naming_one_bucket_are_refused_before_any_call_naming_both(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str], recorder
) -> None:
    Path("environments/staging-b.yaml").write_text(
        "version: 1\nenvironment: staging-b\nbucket:\n  name: plexus-staging-training\n"
    )
    for command in ("plan", "validate"):
        code, _, err = cli(capsys, command, "environments/staging.yaml", "environments/staging-b.yaml")
        assert code == 1
        assert (
            "error: environments/staging-b.yaml: names the same bucket 'plexus-staging-training' as "
            "environments/staging.yaml: two environments would write one"
        ) in err
    assert recorder.requests == []


def test_apply_of_several_goes_one_after_another_and_stops_at_the_first_failure(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3").create_bucket(Bucket="plexus-staging-training")  # foreign: staging's apply will refuse it
    code, out, err = cli(
        capsys,
        "apply",
        "environments/development.yaml",
        "environments/staging.yaml",
        "environments/production.yaml",
        "--auto-approve",
    )
    assert code == 1
    assert "── development" in out and "── staging" in out and "── production" not in out
    assert err.strip().endswith("(applied: development; not applied: staging, production)")
    assert cli(capsys, "plan", "--env", "development", "--detailed-exitcode")[0] == 0
    assert cli(capsys, "outputs", "--env", "production")[0] == 1  # never applied


def test_outputs_of_several_environments(sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "apply", "environments/development.yaml", "environments/staging.yaml", "--auto-approve")[0] == 0
    code, out, _ = cli(capsys, "outputs", "environments/development.yaml", "environments/staging.yaml", "--json")
    assert code == 0
    assert [d["environment"] for d in json.loads(out)] == ["development", "staging"]


def test_environments_read_their_outputs_together_and_each_keeps_only_its_own(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One DescribeParameters and batched GetParameters serve every environment of an account; a parameter one
    of them published under an old prefix is still found, and only by that environment."""
    assert cli(capsys, "apply", "environments/development.yaml", "environments/staging.yaml", "--auto-approve")[0] == 0
    staging = Path("environments/staging.yaml")
    staging.write_text(staging.read_text() + "outputs:\n  parameter_prefix: /plexus/staging-v2\n")
    code, out, err = cli(
        capsys, "plan", "environments/development.yaml", "environments/staging.yaml", "--json", "--stats"
    )
    assert code == 0
    development, moved = json.loads(out)
    assert development["summary"] == {"add": 0, "change": 0, "destroy": 0}
    outputs = next(c for c in moved["resource_changes"] if c["kind"] == "ssm_outputs")
    stale = {call["action"]: call["params"] for call in outputs["calls"]}["ssm:DeleteParameters"]["Names"]
    assert stale == [
        f"/plexus/staging/{key}"
        for key in ("sagemaker-training-role-arn", "training-bucket-arn", "training-bucket-name")
    ]
    alone = [cli(capsys, "plan", f"environments/{e}.yaml", "--stats")[2] for e in ("development", "staging")]
    calls = [int(text.split("AWS API calls: ")[1].split()[0]) for text in (err, *alone)]
    assert calls[0] < calls[1] + calls[2] - 1, (err, alone)  # fewer than the two apart, beyond the shared identity
