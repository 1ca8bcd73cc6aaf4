"""The apply (or destroy) dies before its k-th write, for every k; rerunning it must finish the job exactly.

In-process, the death is `Crash` (a BaseException nothing in the product catches) raised as the k-th write call
starts; a few points are also checked with a real SIGKILL of a CLI subprocess, where no `finally` runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest

from plexus_infra.sandbox import Sandbox
from tests.faults import Crash, Injector, installed
from tests.helpers import DEV_BUCKET as BUCKET
from tests.helpers import DEV_ROLE as ROLE
from tests.helpers import DEVELOPMENT, pending, run_cli
from tests.helpers import cli as run

OBJECTS = {"training-data/a.csv": b"a,b\n1,2\n", "models/m.bin": b"\x00" * 64, "training-code/train.py": b"pass\n"}
# Between CreateBucket and PutBucketTagging a bucket in moto has no tags (moto ignores CreateBucketConfiguration.Tags,
# which real S3 applies): the outputs, published first, vouch for it, so a plain rerun resumes.
LOCK = "/plexus-infra/locks/development"
LOCK_RELEASE = "ssm:DeleteParameter"
PARAMETERS = [
    "/plexus/development/sagemaker-training-role-arn",
    "/plexus/development/training-bucket-arn",
    "/plexus/development/training-bucket-name",
]


def upload_objects() -> None:
    """Put the objects with a client the injector does not see (before the TLS-only policy exists: moto
    refuses object writes under any Deny statement)."""
    s3 = boto3.client("s3")
    for key, body in OBJECTS.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def listed_objects() -> dict[str, int]:
    return {o["Key"]: o["Size"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", ())}


def live_inventory() -> tuple[list[str], list[str], list[str]]:
    """Every bucket, role and parameter in the account: duplicates or orphans would show here."""
    s3, iam, ssm = boto3.client("s3"), boto3.client("iam"), boto3.client("ssm")
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    parameters = sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"] if p["Name"] != LOCK)
    return buckets, roles, parameters


def lock_left() -> bool:
    return any(p["Name"] == LOCK for p in boto3.client("ssm").describe_parameters()["Parameters"])


def count_writes(capsys: pytest.CaptureFixture[str], *argv: str, prepare: Callable[[], None] = lambda: None) -> int:
    """How many write calls a clean run of `argv` makes."""
    prepare()
    counter = Injector()
    with installed(counter):
        assert run(capsys, *argv)[0] == 0
    return len(counter.writes)


def crash_then_rerun(
    capsys: pytest.CaptureFixture[str], k: int, argv: list[str], on_success: dict[str, Callable[[], None]]
) -> str:
    """Die before write k, then rerun; returns the write that never happened."""
    injector = Injector(crash_at_write=k, on_success=on_success)
    with installed(injector), pytest.raises(Crash):
        run(capsys, *argv)
    capsys.readouterr()
    code, out, err = run(capsys, *argv)
    lost = injector.writes[k - 1]
    assert code == 0, f"rerun after a crash before write {k} ({lost}): {err or out}"
    return lost


def test_apply_resumes_exactly_after_a_crash_before_every_write(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["apply", "--auto-approve", str(DEVELOPMENT)]
    writes = count_writes(capsys, *argv)
    outputs_json = run(capsys, "outputs", "--json", str(DEVELOPMENT))[1]
    crashed_at = []
    for k in range(1, writes + 1):
        sandbox.reset()
        uploaded: list[None] = []
        upload = {"s3:CreateBucket": lambda done=uploaded: done.append(upload_objects())}
        lost = crash_then_rerun(capsys, k, argv, upload)
        crashed_at.append(lost)
        assert pending() == [], f"crash before write {k} ({lost})"
        assert live_inventory() == ([BUCKET], [ROLE], PARAMETERS), f"crash before write {k} ({lost})"
        expected = {key: len(body) for key, body in OBJECTS.items()} if uploaded else {}
        assert listed_objects() == expected, f"crash before write {k} ({lost})"
        # A run that dies before releasing its lock leaves it (as Terraform's do); the rerun had nothing to write.
        assert lock_left() == (lost == LOCK_RELEASE), f"crash before write {k} ({lost})"
        assert run(capsys, "outputs", "--json", str(DEVELOPMENT))[1] == outputs_json
    assert len(crashed_at) == writes
    with capsys.disabled():
        print(f"\n[crash-resume] apply: {writes} crash points, each resumed exactly: {', '.join(crashed_at)}")


def prepare_development_with_objects() -> None:
    """Development applied, holding objects. moto refuses DeleteObjects under the TLS-only Deny (it ignores the
    condition), so its policy goes first; AWS over TLS needs no such step."""
    from plexus_infra.cli import main

    assert main(["apply", "--auto-approve", str(DEVELOPMENT)]) == 0
    s3 = boto3.client("s3")
    s3.delete_bucket_policy(Bucket=BUCKET)
    upload_objects()
    upload_objects()  # a second version of each: destroy must delete versions, not just keys


def test_destroy_resumes_to_nothing_left_after_a_crash_before_every_delete(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["destroy", "--auto-approve", str(DEVELOPMENT)]
    writes = count_writes(capsys, *argv, prepare=prepare_development_with_objects)
    crashed_at = []
    for k in range(1, writes + 1):
        sandbox.reset()
        prepare_development_with_objects()
        capsys.readouterr()
        crashed_at.append(crash_then_rerun(capsys, k, argv, {}))
        assert live_inventory() == ([], [], []), f"crash before write {k} ({crashed_at[-1]})"
        assert pending(operation="destroy") == []
        assert lock_left() == (crashed_at[-1] == LOCK_RELEASE)
    with capsys.disabled():
        print(f"\n[crash-resume] destroy: {writes} crash points, each resumed to nothing: {', '.join(crashed_at)}")


APPLY_WRITES = 15  # a development apply from nothing: the lock, 3 outputs, 10 resource writes, the release


@pytest.mark.parametrize("k", range(1, APPLY_WRITES + 1))
def test_apply_killed_with_sigkill_resumes_with_a_plain_apply_on_the_same_host(sandbox: Sandbox, k: int) -> None:
    """A real SIGKILL as the k-th write starts: no `finally` runs, so the lock stays behind, held by a process
    that is gone; the next apply on this host takes it over at once and reaches the exact end state."""
    killed = run_cli(
        "apply",
        "--auto-approve",
        str(DEVELOPMENT),
        env={"PLEXUS_TEST_FAULTS": json.dumps({"kill_at_write": k})},
        module="tests.faults",
    )
    assert killed.returncode == -9, killed.stderr
    rerun = run_cli("apply", "--auto-approve", str(DEVELOPMENT))
    assert rerun.returncode == 0, rerun.stderr
    assert ("Broke the lock left by a run that is gone" in rerun.stdout) == (k > 1), rerun.stdout
    assert not lock_left()
    assert pending() == []
    assert live_inventory() == ([BUCKET], [ROLE], PARAMETERS)
