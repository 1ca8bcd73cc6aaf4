"""Saved plans against the sandbox: applied unchanged they converge; a moved world is refused before any write."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from plexus_infra import cli
from plexus_infra.core.aws import Clients
from plexus_infra.sandbox import Sandbox

BUCKET = "plexus-staging-training"
LOCK = "/plexus-infra/locks/staging"


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
    assert not any(op.startswith("ssm:PutParameter") for c in made_clients for op in c.calls)
    # One look at the lock (to clear one a killed run left), never a lock write.
    assert sum(c.calls["ssm:GetParameter"] for c in made_clients) == 1, [c.calls for c in made_clients]


# --- what a saved plan is, and how it is named ------------------------------------------------------------------


def test_out_with_a_txt_name_is_refused_before_any_call(workdir: Path, capsys) -> None:
    """The text rendering goes to FILE with a .txt suffix: a .txt FILE would have its JSON overwritten."""
    assert cli.main(["plan", "--env", "staging", "--out", "myplan.txt"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "--out myplan.txt" in err and "use e.g. --out myplan.json" in err
    assert not Path("myplan.txt").exists()


def test_a_saved_plan_is_recognised_by_its_content_whatever_its_name(sandbox: Sandbox, workdir: Path, capsys) -> None:
    assert cli.main(["plan", "--env", "staging", "--out", "saved.plan"]) == 0
    assert "apply exactly it with: plexus-infra apply saved.plan" in capsys.readouterr().out
    assert json.loads(Path("saved.plan").read_text())["tool"] == "plexus-infra"
    assert Path("saved.txt").read_text().startswith("Plan for staging ")
    assert cli.main(["apply", "saved.plan"]) == 0
    assert "Apply complete! 10 added" in capsys.readouterr().out


def test_a_destroy_plan_names_destroy_and_each_command_refuses_the_others_plan(
    sandbox: Sandbox, workdir: Path, made_clients: list[Clients], capsys
) -> None:
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == 0
    assert cli.main(["plan", "--env", "staging", "--destroy", "--out", "d.json"]) == 0
    assert "destroy exactly it with: plexus-infra destroy d.json" in capsys.readouterr().out
    boto3.client("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    assert cli.main(["plan", "--env", "staging", "--out", "a.json"]) == 0
    made_clients.clear()
    capsys.readouterr()

    assert cli.main(["apply", "d.json"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "error: d.json is a destroy plan; run plexus-infra destroy d.json\n"
    assert cli.main(["destroy", "a.json", "--auto-approve"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "error: a.json is an apply plan; run plexus-infra apply a.json\n"
    assert made_clients == [], "refused before any AWS call"

    assert cli.main(["apply", "a.json"]) == 0
    assert versioning_status() == "Enabled"


VALID_PLAN = {
    "format_version": "1.0",
    "tool": "plexus-infra",
    "operation": "apply",
    "environment": "staging",
    "manifest": "environments/staging.yaml",
    "manifest_digest": "m" * 64,
    "account": "123456789012",
    "region": "us-east-1",
    "observed_digest": "o" * 64,
    "observed": {"s3_bucket.plexus-staging-training": "d" * 64},
    "resource_changes": [],
}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"tool": "plexus-infra", "format_version": "1.0"}, "manifest is missing"),
        ({**VALID_PLAN, "observed": [1]}, "observed must be an object, not an array"),
        ({**VALID_PLAN, "observed": {"s3_bucket.x": 1}}, "observed must map addresses to digest strings"),
        ({**VALID_PLAN, "manifest": None}, "manifest must be a string, not null"),
        ({**VALID_PLAN, "operation": "upgrade"}, "operation 'upgrade' is neither apply nor destroy"),
        ({**VALID_PLAN, "format_version": 1}, "saved plan without a format_version string"),
        ({**VALID_PLAN, "format_version": "2.0"}, "plan format 2.0 is not readable by format 1.1"),
    ],
)
def test_a_malformed_saved_plan_is_one_line_before_any_call(
    workdir: Path, made_clients: list[Clients], capsys, document: dict, message: str
) -> None:
    Path("bad.json").write_text(json.dumps(document))
    assert cli.main(["apply", "bad.json"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: bad.json: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert made_clients == []
