"""The data-safety rules every plan carries: each marks what it must, and leaves alone what loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from plexus_infra.data_safety import mark
from plexus_infra.plan import DELETE, UPDATE, Change
from plexus_infra.resources.lifecycle import canonical_rule
from plexus_infra.sandbox import Sandbox
from tests.helpers import DEV_BUCKET, cli


def rules(*documents: dict) -> dict:
    return {"rules": {d["ID"]: canonical_rule(d) for d in documents}}


def rule(rule_id: str, prefix: str, **fields: object) -> dict:
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **fields}


def lifecycle(before: dict, after: dict) -> tuple[str, ...]:
    return mark(Change("s3_bucket_lifecycle.b", UPDATE, before, after, ("rules",), "differs")).data_loss


MODELS_30 = rule("expire-models", "models/", Expiration={"Days": 30})


def test_a_shortened_expiration_is_data_loss_and_a_longer_one_is_not() -> None:
    shorter = rule("expire-models", "models/", Expiration={"Days": 7})
    assert lifecycle(rules(MODELS_30), rules(shorter)) == (
        "rule expire-models expires models/ after 7 days (was 30 days)",
    )
    longer = rule("expire-models", "models/", Expiration={"Days": 90})
    assert lifecycle(rules(MODELS_30), rules(longer)) == ()


def test_an_expiration_added_where_there_was_none_is_data_loss() -> None:
    added = rule("expire-everything", "", Expiration={"Days": 365})
    assert lifecycle(rules(MODELS_30), rules(MODELS_30, added)) == (
        "rule expire-everything expires every object in the bucket after 365 days (was never)",
    )


def test_a_rule_under_a_broader_one_is_compared_with_what_already_covers_its_objects() -> None:
    everything = rule("expire-all", "", Expiration={"Days": 10})
    narrower = rule("expire-models", "models/", Expiration={"Days": 20})
    assert lifecycle(rules(everything), rules(everything, narrower)) == ()  # models/ already went at 10 days


def test_a_widened_prefix_and_an_earlier_transition_are_data_loss() -> None:
    tier = rule("tier", "training-data/", Transitions=[{"Days": 90, "StorageClass": "GLACIER"}])
    wider = rule("tier", "", Transitions=[{"Days": 90, "StorageClass": "GLACIER"}])
    assert lifecycle(rules(tier), rules(wider)) == (
        "rule tier now covers every object in the bucket (was training-data/)",
    )
    earlier = rule("tier", "training-data/", Transitions=[{"Days": 60, "StorageClass": "GLACIER"}])
    assert lifecycle(rules(tier), rules(earlier)) == (
        "rule tier moves training-data/ to GLACIER after 60 days (was 90)",
    )


def test_versioning_off_and_a_deleted_policy_are_data_loss_their_opposites_are_not() -> None:
    def reasons(kind: str, before: dict, after: dict) -> tuple[str, ...]:
        return mark(Change(f"{kind}.b", UPDATE, before, after, tuple(after), "differs")).data_loss

    assert reasons("s3_bucket_versioning", {"status": "Enabled"}, {"status": "Suspended"})
    assert not reasons("s3_bucket_versioning", {"status": "Suspended"}, {"status": "Enabled"})
    assert reasons("s3_bucket_policy", {"policy": {"Statement": []}}, {"policy": None})
    assert not reasons("s3_bucket_policy", {"policy": None}, {"policy": {"Statement": []}})


def test_the_removal_guard_moving_to_destroy_counts_only_for_a_bucket_with_objects() -> None:
    def reasons(holds: bool) -> tuple[str, ...]:
        before = {"tags": {"plexus:removal-policy": "retain"}, "holds_objects": holds}
        after = {"tags": {"plexus:removal-policy": "destroy"}}
        return mark(Change("s3_bucket.b", UPDATE, before, after, ("tags",), "differs")).data_loss

    assert reasons(True) and not reasons(False)
    assert mark(Change("s3_bucket.b", DELETE, {"tags": {}}, None, (), "removed")).data_loss


def test_a_plan_that_shortens_models_expiry_is_marked_in_text_and_json(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "apply", "--env", "development", "--auto-approve")[0] == 0
    manifest = Path("environments/development.yaml")
    manifest.write_text(manifest.read_text().replace("expiration_days: 30", "expiration_days: 3"))
    code, out, _ = cli(capsys, "plan", "--env", "development")
    assert code == 0
    assert "      ! data loss: rule expire-models expires models/ after 3 days (was 30 days)" in out
    document = json.loads(cli(capsys, "plan", "--env", "development", "--json")[1])
    marked = [c for c in document["resource_changes"] if c["data_loss"]]
    assert [(c["address"], c["data_loss_reasons"]) for c in marked] == [
        (f"s3_bucket_lifecycle.{DEV_BUCKET}", ["rule expire-models expires models/ after 3 days (was 30 days)"])
    ]


def test_moving_the_guard_to_destroy_reads_whether_the_bucket_holds_objects(
    sandbox: Sandbox, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = Path("environments/staging.yaml")
    assert cli(capsys, "apply", str(manifest), "--auto-approve")[0] == 0
    s3 = boto3.client("s3")
    s3.delete_bucket_policy(Bucket="plexus-staging-training")  # moto refuses PutObject under any Deny statement
    s3.put_object(Bucket="plexus-staging-training", Key="training-data/a.csv", Body=b"text,label\n")
    manifest.write_text(manifest.read_text().replace("removal_policy: retain", "removal_policy: destroy"))
    out = cli(capsys, "plan", str(manifest))[1]
    assert "! data loss: moves the removal guard to destroy on a bucket that holds objects" in out
