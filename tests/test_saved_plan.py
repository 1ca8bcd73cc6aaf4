"""Saved plans against the sandbox: applied unchanged they converge; a moved world is refused before any write."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from plexus_infra import cli
from plexus_infra.aws import Clients
from plexus_infra.sandbox import Sandbox

BUCKET = "plexus-staging-training"
LOCK = "/plexus/staging/lock"


@pytest.fixture
def made_clients(monkeypatch: pytest.MonkeyPatch) -> list[Clients]:
    """Every Clients the CLI creates, so a test can count the writes it made."""
    made: list[Clients] = []
    original = Clients.__init__

    def record(self: Clients, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Clients, "__init__", record)
    return made


def writes(made: list[Clients]) -> int:
    return sum(clients.writes for clients in made)


def versioning_status() -> str | None:
    return boto3.client("s3").get_bucket_versioning(Bucket=BUCKET).get("Status")


def lock_exists() -> bool:
    return bool(boto3.client("ssm").get_parameters(Names=[LOCK])["Parameters"])


def test_saved_plan_applied_unchanged_converges(sandbox: Sandbox, workdir: Path, capsys) -> None:
    assert cli.main(["plan", "--env", "staging", "--out", "plan.json"]) == 0
    saved = json.loads(Path("plan.json").read_text())
    assert saved["format_version"].split(".")[0] == "1" and saved["observed"]
    assert cli.main(["apply", "plan.json"]) == 0
    assert "Apply complete! 10 added" in capsys.readouterr().out
    assert versioning_status() == "Enabled"
    assert not lock_exists(), "the lock is released after the apply"
    assert cli.main(["plan", "--env", "staging", "--detailed-exitcode"]) == 0


def test_saved_plan_is_refused_after_an_out_of_band_change_without_a_write(
    sandbox: Sandbox, workdir: Path, made_clients: list[Clients], capsys
) -> None:
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == 0
    boto3.client("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    assert cli.main(["plan", "--env", "staging", "--out", "plan.json"]) == 0
    boto3.client("s3").put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "owner", "Value": "someone"}]})
    made_clients.clear()
    capsys.readouterr()

    assert cli.main(["apply", "plan.json"]) == cli.EXIT_ERROR

    err = capsys.readouterr().err
    assert "Saved plan plan.json is stale: live state changed for s3_bucket.plexus-staging-training" in err
    assert "Nothing was changed; plan again." in err
    assert writes(made_clients) == 0
    assert versioning_status() == "Suspended"
    assert not lock_exists()


def test_saved_plan_is_refused_after_the_manifest_changed(sandbox: Sandbox, workdir: Path, capsys) -> None:
    assert cli.main(["plan", "--env", "staging", "--out", "plan.json"]) == 0
    manifest = Path("environments/staging.yaml")
    manifest.write_text(manifest.read_text().replace("ml-staging", "ml-staging-2"))
    assert cli.main(["apply", "plan.json"]) == cli.EXIT_ERROR
    assert "the manifest environments/staging.yaml changed" in capsys.readouterr().err
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_apply_with_nothing_to_change_takes_no_lock_and_writes_nothing(
    sandbox: Sandbox, workdir: Path, made_clients: list[Clients]
) -> None:
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == 0
    made_clients.clear()
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == 0
    assert writes(made_clients) == 0
    assert not any(
        op.startswith("ssm:PutParameter") or op == "ssm:GetParameter" for c in made_clients for op in c.calls
    ), [c.calls for c in made_clients]
