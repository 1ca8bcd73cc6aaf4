"""The reconcile engine end to end: the real CLI against the local moto server.

A few tests run `python -m plexus_infra` in a subprocess, as a user would; the rest call `cli.main(argv)`
in-process (pipx's style) and count every AWS request the tool makes, so "no write" is asserted, not assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    DEV_BUCKET,
    DEV_ROLE,
    LOCK_PREFIX,
    ROOT,
    STAGING_BUCKET,
    STAGING_ROLE,
    AwsClients,
    Recorder,
    cli,
    known_plan,
    run_cli,
)


def bucket_exists(s3: Any, name: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError:
        return False
    return True


def role_exists(iam: Any, name: str) -> bool:
    try:
        iam.get_role(RoleName=name)
    except ClientError:
        return False
    return True


def parameters(ssm: Any, prefix: str) -> list[str]:
    found = ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"]
    return sorted(p["Name"] for p in found)


def upload_versions(s3: Any, bucket: str) -> int:
    """Several versions of several keys plus delete markers; returns how many versions and markers exist.

    moto refuses PutObject while the TLS-only policy (a Deny statement) is on the bucket, so the test removes
    the policy first (out of band, as a person would); the manifest's default is never weakened."""
    s3.delete_bucket_policy(Bucket=bucket)
    for version in range(3):
        for key in ("training-data/train.csv", "models/model.tar.gz", "training-code/entry.py"):
            s3.put_object(Bucket=bucket, Key=key, Body=f"version {version}".encode())
    s3.delete_object(Bucket=bucket, Key="training-code/entry.py")
    s3.delete_object(Bucket=bucket, Key="models/model.tar.gz")
    return count_versions(s3, bucket)


def count_versions(s3: Any, bucket: str) -> int:
    answer = s3.list_object_versions(Bucket=bucket)
    return len(answer.get("Versions", [])) + len(answer.get("DeleteMarkers", []))


def manifest_copy(tmp_path: Path, env: str, *, replace: tuple[str, str] | None = None, insert: str = "") -> Path:
    """environments/ENV.yaml copied to tmp_path, with one text replacement and/or a line after `version: 1`."""
    text = (ROOT / "environments" / f"{env}.yaml").read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    if insert:
        text = text.replace("version: 1\n", f"version: 1\n{insert}\n", 1)
    path = tmp_path / f"{env}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the whole loop through the real entry point (subprocesses) ---------------------------------------------


def test_plan_apply_plan_apply_converges_and_the_second_apply_writes_nothing(aws: AwsClients) -> None:
    empty = run_cli("plan", "--env", "development", "--detailed-exitcode")
    assert empty.returncode == 2, empty.stderr
    assert "Plan: 10 to add, 0 to change, 0 to destroy." in empty.stdout
    assert f"+ s3_bucket.{DEV_BUCKET}" in empty.stdout

    applied = run_cli("apply", "--env", "development", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete! 10 added, 0 changed, 0 destroyed." in applied.stdout

    clean = run_cli("plan", "--env", "development", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No changes. Infrastructure matches environments/development.yaml." in clean.stdout

    again = run_cli("apply", "--env", "development", "--auto-approve", "--stats")
    assert again.returncode == 0, again.stderr
    assert "No changes." in again.stdout
    stats = [line for line in again.stderr.splitlines() if line.startswith("AWS API calls:")]
    assert stats and all(line.endswith("(0 writes)") for line in stats), again.stderr


def test_apply_without_a_terminal_or_auto_approve_refuses_before_writing(aws: AwsClients) -> None:
    refused = run_cli("apply", "--env", "development", input="")
    assert refused.returncode == 1
    assert "--auto-approve" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not bucket_exists(aws.s3, DEV_BUCKET)
    assert not role_exists(aws.iam, DEV_ROLE)


# --- in-process: plan output, counts, guards ---------------------------------------------------------------


def test_apply_in_process_converges_and_a_second_apply_makes_zero_writes(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 0
    assert recorder.write_operations >= {"s3:CreateBucket", "iam:CreateRole", "ssm:PutParameter"}

    recorder.clear()
    code, out, _ = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 0
    assert "No changes. Infrastructure matches environments/development.yaml." in out
    assert recorder.writes == []
    assert all(not r.is_write for r in recorder.requests), "a no-op apply takes no lock either"
    assert len(recorder.requests) <= 20, sorted(r.operation for r in recorder.requests)


def test_non_tty_apply_in_process_refuses_with_no_write(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "apply", "--env", "development")
    assert code == 1
    assert "--auto-approve" in err
    assert recorder.writes == []


def test_plan_json_is_the_versioned_contract_for_a_real_plan(
    aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "plan", "--env", "development", "--json", "--detailed-exitcode")
    assert code == 2
    data = json.loads(out)
    assert data["format_version"].startswith("1.")
    assert data["operation"] == "apply"
    assert data["account"] == "123456789012"
    addresses = [c["address"] for c in data["resource_changes"]]
    assert addresses == sorted(addresses)
    assert len(addresses) == 11
    actions = {c["address"].split(".", 1)[0]: c["actions"] for c in data["resource_changes"]}
    assert actions["s3_bucket"] == ["create"]
    assert actions["iam_role_policy_attachments"] == ["no-op"]
    assert data["summary"] == {"add": 10, "change": 0, "destroy": 0}


def test_wrong_account_is_refused_before_any_other_call(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = str(manifest_copy(tmp_path, "development", insert='account_id: "999999999999"'))
    for argv in (["plan", manifest], ["apply", manifest, "--auto-approve"], ["destroy", manifest, "--auto-approve"]):
        code, _, err = cli(capsys, *argv)
        assert code == 1, argv
        assert "999999999999" in err and "123456789012" in err
        assert "Traceback" not in err
    assert recorder.operations == {"sts:GetCallerIdentity"}
    assert not bucket_exists(aws.s3, DEV_BUCKET)


def test_outputs_and_force_unlock_refuse_the_wrong_account_before_reading_or_writing(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lock_name = f"{LOCK_PREFIX}development"
    aws.ssm.put_parameter(Name=lock_name, Value='{"id": "their-lock"}', Type="String")
    manifest = str(manifest_copy(tmp_path, "development", insert='account_id: "999999999999"'))
    for argv in (["outputs", manifest], ["outputs", manifest, "--json"], ["force-unlock", "their-lock", manifest]):
        code, out, err = cli(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("error: ") and "999999999999" in err and "123456789012" in err, err
        assert out == ""
    assert recorder.operations == {"sts:GetCallerIdentity"}
    assert aws.ssm.get_parameter(Name=lock_name)["Parameter"]["Value"] == '{"id": "their-lock"}'


def test_adoption_refusal_names_each_foreign_resource_in_agreement_with_the_count() -> None:
    from plexus_infra.core.errors import GuardError
    from plexus_infra.engine import check_adoption
    from plexus_infra.plan import Change

    def foreign(address: str) -> Change:
        return Change(address, ("update",), {"tags": {}}, {"tags": {"a": "b"}}, ("tags",), "foreign", foreign=True)

    one = known_plan(changes=(foreign(f"s3_bucket.{DEV_BUCKET}"),))
    with pytest.raises(GuardError, match=rf"^s3_bucket.{DEV_BUCKET} already exists without .* to take it over"):
        check_adoption(one, adopt=False)
    two = known_plan(changes=(foreign(f"s3_bucket.{DEV_BUCKET}"), foreign(f"iam_role.{DEV_ROLE}")))
    with pytest.raises(GuardError, match=rf"iam_role.{DEV_ROLE} already exist without .* to take them over"):
        check_adoption(two, adopt=False)
    check_adoption(two, adopt=True)


# --- ownership: a bucket someone else made -------------------------------------------------------------------


def test_foreign_bucket_shows_as_foreign_and_is_not_adopted_without_adopt(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.s3.create_bucket(Bucket=DEV_BUCKET)

    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 2
    assert f"~ s3_bucket.{DEV_BUCKET}" in out
    assert "foreign" in out

    recorder.clear()
    code, _, err = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 1
    assert "--adopt" in err and f"s3_bucket.{DEV_BUCKET}" in err
    assert recorder.writes == []
    assert "TagSet" not in _tagging(aws.s3, DEV_BUCKET)
    assert not role_exists(aws.iam, DEV_ROLE)

    code, _, _ = cli(capsys, "apply", "--env", "development", "--auto-approve", "--adopt")
    assert code == 0
    tags = {t["Key"]: t["Value"] for t in _tagging(aws.s3, DEV_BUCKET)["TagSet"]}
    assert tags["plexus:managed-by"] == "plexus-infra"
    assert tags["plexus:environment"] == "development"
    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 0, out


def test_foreign_role_is_not_adopted_without_adopt(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {}}]}
    trust["Statement"][0]["Principal"] = {"Service": "sagemaker.amazonaws.com"}
    aws.iam.create_role(RoleName=DEV_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    code, _, err = cli(capsys, "apply", "--env", "development", "--auto-approve")
    assert code == 1
    assert f"iam_role.{DEV_ROLE}" in err
    assert recorder.writes == []


def _tagging(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        return s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as exc:
        return {"Error": exc.response["Error"]["Code"]}


# --- destroy and the removal guard ----------------------------------------------------------------------------


def test_destroy_development_empties_every_version_and_removes_everything(
    aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    assert upload_versions(aws.s3, DEV_BUCKET) == 11  # 9 versions + 2 delete markers

    code, out, _ = cli(capsys, "destroy", "--env", "development", "--auto-approve")
    assert code == 0
    assert "Destroy complete! 0 added, 0 changed, 3 destroyed." in out
    assert not bucket_exists(aws.s3, DEV_BUCKET)
    assert not role_exists(aws.iam, DEV_ROLE)
    assert parameters(aws.ssm, "/plexus/development") == []
    code, out, _ = cli(capsys, "plan", "--env", "development", "--destroy", "--detailed-exitcode")
    assert code == 0, out


def test_destroy_staging_keeps_the_bucket_and_its_objects_and_says_so(
    aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "apply", "--env", "staging", "--auto-approve")[0] == 0
    versions = upload_versions(aws.s3, STAGING_BUCKET)

    code, out, _ = cli(capsys, "destroy", "--env", "staging", "--auto-approve")
    assert code == 0
    assert f"bucket {STAGING_BUCKET} and every object in it stay" in out
    assert "2 destroyed" in out
    assert bucket_exists(aws.s3, STAGING_BUCKET)
    assert count_versions(aws.s3, STAGING_BUCKET) == versions
    assert not role_exists(aws.iam, STAGING_ROLE)
    assert parameters(aws.ssm, "/plexus/staging") == []

    # a later apply picks the retained bucket up again (it still carries this environment's tags)
    code, out, _ = cli(capsys, "plan", "--env", "staging")
    assert f"s3_bucket.{STAGING_BUCKET}" not in out.replace(f"s3_bucket_policy.{STAGING_BUCKET}", "")
    assert "foreign" not in out


def test_retain_to_destroy_edit_and_destroy_in_one_go_keeps_the_bucket(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "apply", "--env", "staging", "--auto-approve")[0] == 0
    versions = upload_versions(aws.s3, STAGING_BUCKET)
    edited = str(manifest_copy(tmp_path, "staging", replace=("removal_policy: retain", "removal_policy: destroy")))

    code, out, _ = cli(capsys, "destroy", edited, "--auto-approve", "--verbose")
    assert code == 0
    assert "tag still says retain" in out
    assert bucket_exists(aws.s3, STAGING_BUCKET)
    assert count_versions(aws.s3, STAGING_BUCKET) == versions

    # Only once an apply has moved the tag does destroy delete the bucket.
    code, out, _ = cli(capsys, "apply", edited, "--auto-approve")
    assert code == 0
    assert "plexus:removal-policy" in out
    # moto applies the TLS-only Deny to DeleteObjects over plain HTTP (AWS over HTTPS does not): remove it again.
    aws.s3.delete_bucket_policy(Bucket=STAGING_BUCKET)
    code, out, err = cli(capsys, "destroy", edited, "--auto-approve")
    assert code == 0, err
    assert not bucket_exists(aws.s3, STAGING_BUCKET)


def test_tag_guard_retention_is_said_without_verbose(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "apply", "--env", "staging", "--auto-approve")[0] == 0
    edited = str(manifest_copy(tmp_path, "staging", replace=("removal_policy: retain", "removal_policy: destroy")))
    code, out, _ = cli(capsys, "destroy", edited, "--auto-approve")
    assert code == 0
    assert f"bucket {STAGING_BUCKET} and every object in it stay" in out
    assert "tag still says retain" in out


# --- saved plans -------------------------------------------------------------------------------------------------


def test_saved_plan_applies_exactly_and_converges(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    code, out, _ = cli(capsys, "plan", "--env", "development", "--out", str(saved))
    assert code == 0
    assert saved.exists() and saved.with_suffix(".txt").exists()
    assert "Plan: 10 to add" in saved.with_suffix(".txt").read_text(encoding="utf-8")

    code, out, _ = cli(capsys, "apply", str(saved))
    assert code == 0, out
    code, out, _ = cli(capsys, "plan", "--env", "development", "--detailed-exitcode")
    assert code == 0, out


def test_saved_plan_is_refused_as_stale_after_an_out_of_band_change(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    aws.s3.put_bucket_versioning(Bucket=DEV_BUCKET, VersioningConfiguration={"Status": "Suspended"})
    saved = tmp_path / "plan.json"
    assert cli(capsys, "plan", "--env", "development", "--out", str(saved))[0] == 0
    aws.iam.update_role(RoleName=DEV_ROLE, Description="edited in the console after the plan was saved")

    recorder.clear()
    code, _, err = cli(capsys, "apply", str(saved))
    assert code == 1
    assert "stale" in err
    assert f"iam_role.{DEV_ROLE}" in err
    assert recorder.writes == []
    assert aws.s3.get_bucket_versioning(Bucket=DEV_BUCKET)["Status"] == "Suspended"


def test_saved_plan_is_refused_when_the_manifest_changed(
    aws: AwsClients, recorder: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = manifest_copy(tmp_path, "development")
    saved = tmp_path / "plan.json"
    assert cli(capsys, "plan", str(manifest), "--out", str(saved))[0] == 0
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("ml-dev", "ml-research"), encoding="utf-8")
    recorder.clear()
    code, _, err = cli(capsys, "apply", str(saved))
    assert code == 1
    assert "stale" in err and "manifest" in err
    assert recorder.writes == []
    assert not bucket_exists(aws.s3, DEV_BUCKET)
