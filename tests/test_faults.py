"""AWS misbehaving: throttling and 5xx on a quarter of all calls, eventual consistency, AccessDenied.

Faults are real AWS error responses handed to botocore (tests/faults.py), so botocore's standard retry mode and
the engine's own bounded retries are what is under test. Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.faults import Answer, Injector, RandomFaults, StaleRead, installed, is_write
from tests.helpers import DEV_BUCKET as BUCKET
from tests.helpers import DEV_ROLE as ROLE
from tests.helpers import DEVELOPMENT, pending
from tests.helpers import cli as run

INLINE_POLICY = "plexus-training-access"
FAULT_RATE = 0.25
SEEDS = (1, 2, 3)


pytestmark = pytest.mark.usefixtures("sandbox", "fast_backoff")


def assert_development_live() -> None:
    """The exact end state of development, read with a plain boto3 client."""
    s3, iam, ssm = boto3.client("s3"), boto3.client("iam"), boto3.client("ssm")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert lifecycle["expire-training-data"]["Expiration"] == {"Days": 7}
    assert lifecycle["expire-models"]["Expiration"] == {"Days": 30}
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == [INLINE_POLICY]
    parameters = ssm.get_parameters_by_path(Path="/plexus/development", Recursive=True)["Parameters"]
    values = {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in parameters}
    assert values == {
        "training-bucket-name": BUCKET,
        "training-bucket-arn": f"arn:aws:s3:::{BUCKET}",
        "sagemaker-training-role-arn": f"arn:aws:iam::123456789012:role/{ROLE}",
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_apply_and_destroy_converge_with_a_quarter_of_calls_throttled_or_failing(
    capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    injector = Injector([RandomFaults(rate=FAULT_RATE, seed=seed)])
    with installed(injector):
        applied = run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))
    assert applied[0] == 0, applied
    assert pending() == []
    assert_development_live()
    with installed(injector):
        destroyed = run(capsys, "destroy", "--auto-approve", str(DEVELOPMENT))
    assert destroyed[0] == 0, destroyed
    assert pending(operation="destroy") == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert injector.total >= 10 and injector.surfaced == 0
    with capsys.disabled():
        print(f"\n[faults seed={seed}, rate={FAULT_RATE}] apply+destroy: {injector.report()}; all survived")


def test_throttling_on_every_attempt_ends_in_one_line_after_the_retry_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    injector = Injector([Answer({"ssm:GetParameters"}, ("ThrottlingException", 400))])
    with installed(injector):
        code, _out, err = run(capsys, "plan", str(DEVELOPMENT))
    assert code == 1
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: ssm:GetParameters parameters /plexus/development/")
    assert "ThrottlingException" in err and "kept throttling" in err and "Traceback" not in err
    assert injector.injected["ThrottlingException"] == 9  # the first attempt and max_attempts=8 retries, no more


def test_changes_already_in_progress_are_sent_again_where_botocore_would_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """IAM's ConcurrentModification (409) and SSM's TooManyUpdates (400) are no throttling codes: botocore's standard
    retry mode gives up on them at once (botocore/retries/standard.py). AWS answers them while another change to
    the same role or parameter runs; the tool sends the call again after a pause."""
    injector = Injector(
        [
            Answer({"iam:PutRolePolicy"}, ("ConcurrentModification", 409), times=2),
            Answer({"ssm:PutParameter"}, ("TooManyUpdates", 400), times=2),
        ]
    )
    with installed(injector):
        code, _out, err = run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))
    assert code == 0, err
    assert injector.injected == {"ConcurrentModification": 2, "TooManyUpdates": 2}
    assert injector.surfaced == 4  # botocore passed each on to the tool, which sent it again
    assert pending() == []
    assert_development_live()


def bucket_setting_write(operation: str) -> bool:
    """A PUT of one of the bucket's settings (tags, versioning, encryption, ...)."""
    return operation.startswith("s3:PutBucket") or operation == "s3:PutPublicAccessBlock"


def test_a_new_bucket_that_is_not_visible_yet_is_waited_for(capsys: pytest.CaptureFixture[str]) -> None:
    injector = Injector(
        [
            Answer({"s3:HeadBucket"}, ("404", 404), times=1, after="s3:CreateBucket"),
            Answer(bucket_setting_write, ("NoSuchBucket", 404), times=3, after="s3:CreateBucket"),
        ]
    )
    with installed(injector):
        code, _out, err = run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))
    assert code == 0, err
    assert injector.injected == {"404": 1, "NoSuchBucket": 3}
    assert pending() == []
    assert_development_live()


def test_an_inline_policy_put_that_races_role_creation_is_retried(capsys: pytest.CaptureFixture[str]) -> None:
    injector = Injector([Answer({"iam:PutRolePolicy"}, ("NoSuchEntity", 404), times=1, after="iam:CreateRole")])
    with installed(injector):
        code, _out, err = run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))
    assert code == 0, err
    assert injector.injected == {"NoSuchEntity": 1}
    assert injector.writes.count("iam:PutRolePolicy") == 2
    assert pending() == []
    assert_development_live()


def test_a_lifecycle_read_that_still_shows_the_old_rules_is_read_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))[0] == 0
    edited = tmp_path / "development.yaml"
    edited.write_text(DEVELOPMENT.read_text().replace("expiration_days: 7", "expiration_days: 14"))
    stale = StaleRead("s3:PutBucketLifecycleConfiguration")
    injector = Injector([stale])
    with installed(injector):
        code, _out, err = run(capsys, "apply", "--auto-approve", str(edited))
    assert code == 0, err
    assert injector.injected == {"stale read": 1}
    assert pending(edited) == []
    rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert {r["ID"]: r.get("Expiration") for r in rules}["expire-training-data"] == {"Days": 14}


@pytest.mark.parametrize(
    ("denied", "command", "message"),
    [
        ("s3:GetBucketPolicy", "plan", f"error: s3:GetBucketPolicy bucket {BUCKET}: AccessDenied"),
        ("s3:GetBucketPolicy", "apply", f"error: s3:GetBucketPolicy bucket {BUCKET}: AccessDenied"),
        ("iam:PutRolePolicy", "apply", f"error: iam:PutRolePolicy role {ROLE} policy {INLINE_POLICY}: AccessDenied"),
    ],
)
def test_access_denied_is_one_line_naming_action_and_resource_and_nothing_is_written_after_it(
    capsys: pytest.CaptureFixture[str], denied: str, command: str, message: str
) -> None:
    injector = Injector([Answer({denied}, ("AccessDenied", 403))])
    argv = [command, str(DEVELOPMENT)] + (["--auto-approve"] if command == "apply" else [])
    with installed(injector):
        code, out, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    assert "the credentials lack this permission" in err
    if is_write(denied):
        # The writes before it stand (a rerun continues from there); after it, at most the lock is released.
        after = injector.writes[injector.writes.index(denied) + 1 :]
        assert set(after) <= {"ssm:DeleteParameter"}, after
    else:
        assert injector.writes == []
    assert run(capsys, "apply", "--auto-approve", str(DEVELOPMENT))[0] == 0
    assert pending() == []
