"""`plexus provision endpoint|status|delete` against the moto server. moto has no update_endpoint, so that one
call is made through botocore's Stubber (on a second client) while every other call goes to moto."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from plexus_infra.core.aws import Clients
from plexus_infra.core.errors import PlexusError
from plexus_infra.environments import TrainingOutputs as Outputs
from plexus_infra.plan import CREATE, DELETE, UPDATE, Change
from plexus_train.model_source import DIGEST_METADATA, UPLOAD_LOCAL, USE_BUCKET, LocalModel, choose_model
from plexus_train.packaging import tree_digest
from plexus_train.provision import CONFIG_KIND, ENDPOINT_KIND, MODEL_KIND, Provisioned, Provisioner, endpoint_spec
from plexus_train.scorecards import find_score
from tests.train.helpers import BUCKET, ROLE, StatusRecorder, plexus_cli, publish_outputs

ENDPOINT = "test-scorecard-v-1-0--ticket-topic"
CANONICAL = "models/test-scorecard-v-1-0/ticket-topic/model.tar.gz"


def provisioner(root: Path) -> Provisioner:
    return Provisioner(
        Clients("us-east-1"), Outputs(BUCKET, ROLE), StatusRecorder(), "test", models_root=root, sleep=lambda _: None
    )


def actions(result: Provisioned) -> list[tuple[str, tuple[str, ...]]]:
    """(kind, actions) of each change made, in order."""
    return [(change.kind, change.actions) for change in result.plan.pending]


def name(change: Change) -> str:
    return change.address.split(".", 1)[1]


def test_local_artifacts_are_packaged_then_a_rerun_is_a_no_op(sandbox, trained: Path, monkeypatch) -> None:
    monkeypatch.chdir(trained)
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    first = provisioner(trained / "models").provision(score)
    assert actions(first) == [(MODEL_KIND, CREATE), (CONFIG_KIND, CREATE), (ENDPOINT_KIND, CREATE)]
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=CANONICAL)["ContentLength"] > 0
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    config = boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    # No deployment settings: serverless at Plexus's defaults.
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 10}

    again = provisioner(trained / "models").provision(score)
    assert again.plan.pending == ()
    noops = [change for change in again.plan.changes if change.is_noop]
    assert len(noops) == 3 and noops[2].address == f"{ENDPOINT_KIND}.{ENDPOINT}"
    assert noops[2].reason == f"already serves {endpoint['EndpointConfigName']}"


@contextlib.contextmanager
def playing_updates(chosen: Provisioner, expected: dict[str, str] | None = None) -> Iterator[Stubber]:
    """moto lacks UpdateEndpoint: that call alone is stubbed (and checked against `expected`, when given); then
    moto plays the update's outcome, so the endpoint serves the new config, as AWS's would once InService again."""
    sagemaker = boto3.client("sagemaker")
    stubbed = boto3.client("sagemaker")
    stubber = Stubber(stubbed)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
    stubber.add_response("update_endpoint", {"EndpointArn": arn}, expected)

    def update_endpoint(**request):
        answer = stubbed.update_endpoint(**request)
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=request["EndpointConfigName"])
        return answer

    chosen.clients.sagemaker.update_endpoint = update_endpoint
    with stubber:
        yield stubber


def test_a_new_model_gives_a_new_config_updates_the_endpoint_and_retires_the_old_ones(
    sandbox, trained: Path, monkeypatch
) -> None:
    monkeypatch.chdir(trained)
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    chosen = provisioner(trained / "models")
    chosen.provision(score)
    sagemaker = boto3.client("sagemaker")
    old_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    old_model = sagemaker.describe_endpoint_config(EndpointConfigName=old_config)["ProductionVariants"][0]["ModelName"]
    boto3.client("s3").put_object(Bucket=BUCKET, Key=CANONICAL, Body=b"a newer model archive")

    expected = {"EndpointName": ENDPOINT, "EndpointConfigName": _new_config_name(chosen, score)}
    with playing_updates(chosen, expected) as stubber:
        result = chosen.provision(score)
        stubber.assert_no_pending_responses()
    made = result.plan.pending
    assert actions(result)[:2] == [(MODEL_KIND, CREATE), (CONFIG_KIND, CREATE)]
    assert (made[2].address, made[2].actions) == (f"{ENDPOINT_KIND}.{ENDPOINT}", UPDATE)
    assert (made[2].before["EndpointConfigName"], made[2].after) == (
        old_config,
        {"EndpointConfigName": expected["EndpointConfigName"]},
    )
    assert [(c.address, c.actions) for c in made[3:]] == [
        (f"{CONFIG_KIND}.{old_config}", DELETE),
        (f"{MODEL_KIND}.{old_model}", DELETE),
    ]
    assert [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [
        expected["EndpointConfigName"]
    ]
    assert len(sagemaker.list_models()["Models"]) == 1


def test_an_update_that_rolled_back_is_an_error_and_retires_nothing(sandbox, trained: Path, monkeypatch) -> None:
    monkeypatch.chdir(trained)
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    chosen = provisioner(trained / "models")
    chosen.provision(score)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=CANONICAL, Body=b"a model the new container cannot load")
    stubbed = boto3.client("sagemaker")
    stubber = Stubber(stubbed)
    stubber.add_response("update_endpoint", {"EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{ENDPOINT}"})
    chosen.clients.sagemaker.update_endpoint = stubbed.update_endpoint  # moto keeps serving the old config
    with stubber, pytest.raises(PlexusError, match=f"endpoint {ENDPOINT} still serves .*-c[0-9a-f]{{10}}, not"):
        chosen.provision(score)
    assert len(boto3.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]) == 2


def _new_config_name(chosen: Provisioner, score) -> str:
    etag = boto3.client("s3").head_object(Bucket=BUCKET, Key=CANONICAL)["ETag"]
    image = score.training.inference_image_uri
    return endpoint_spec(score, f"s3://{BUCKET}/{CANONICAL}", etag, image, ROLE).config_name


def test_status_and_delete_through_the_cli(sandbox, trained: Path) -> None:
    publish_outputs()
    work = trained.parent / "cli-project"
    shutil.copytree(trained, work, dirs_exist_ok=True)
    base = ["--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--env", "test"]

    def plexus(*args: str):
        return plexus_cli(*args, *base, cwd=work)

    assert plexus("provision", "status").returncode == 1
    created = plexus("provision", "endpoint")
    assert created.returncode == 0, created.stderr
    assert f"endpoint {ENDPOINT}: InService (updated)" in created.stdout
    uploaded = f"model: s3://{BUCKET}/{CANONICAL}: uploaded from models/test-scorecard-v-1-0/ticket-topic/, "
    assert uploaded + "the bucket holds no model yet" in " ".join(created.stdout.split())
    rerun = plexus("provision", "endpoint")
    assert "InService (no changes)" in rerun.stdout and "+ created" not in rerun.stdout
    assert "the local artifacts, uploaded earlier (sha256 " in " ".join(rerun.stdout.split())
    status = plexus("provision", "status")
    assert status.returncode == 0 and f"endpoint {ENDPOINT}: InService" in status.stdout
    deleted = plexus("provision", "delete")
    assert deleted.returncode == 0 and deleted.stdout.count("deleted") == 3
    assert plexus("provision", "delete").stdout.startswith("no-op: no endpoint")
    assert boto3.client("sagemaker").list_models()["Models"] == []


def test_delete_removes_every_model_and_config_made_for_the_score_and_nothing_else(sandbox, trained: Path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic", trained / "scorecards")
    sagemaker = boto3.client("sagemaker")
    container = {"Image": "image", "ModelDataUrl": f"s3://{BUCKET}/{CANONICAL}"}
    stem = ENDPOINT
    ours = [f"{stem}-m{'0' * 10}", f"{stem}-m{'1' * 10}"]
    others = [f"{stem}-extra-m{'2' * 10}", "someone-elses-model", f"{stem}-m123"]  # another score, not ours, not ours
    for name in ours + others:
        sagemaker.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "AllTraffic", "ModelName": ours[0], "InstanceType": "ml.m5.large"}
    for name in (f"{stem}-c{'a' * 10}", f"{stem}-c{'b' * 10}", f"{stem}-extra-c{'c' * 10}"):
        sagemaker.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[{**variant, "InitialInstanceCount": 1}]
        )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{stem}-c{'a' * 10}")

    deleted = provisioner(trained / "models").delete(score)

    assert [change.address for change in deleted] == [
        f"{ENDPOINT_KIND}.{ENDPOINT}",
        f"{CONFIG_KIND}.{stem}-c{'a' * 10}",
        f"{CONFIG_KIND}.{stem}-c{'b' * 10}",
        f"{MODEL_KIND}.{ours[0]}",
        f"{MODEL_KIND}.{ours[1]}",
    ]
    assert {change.actions for change in deleted} == {DELETE}
    assert sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]) == sorted(others)
    configs = [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [f"{stem}-extra-c{'c' * 10}"]
    # Leftovers without an endpoint are still found; then nothing is left to do.
    sagemaker.create_model(ModelName=ours[1], PrimaryContainer=container, ExecutionRoleArn=ROLE)
    assert [change.address for change in provisioner(trained / "models").delete(score)] == [f"{MODEL_KIND}.{ours[1]}"]
    assert provisioner(trained / "models").delete(score) == ()


def test_serverless_and_realtime_variants_and_local_targets(project: Path) -> None:
    from dataclasses import replace

    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    realtime = replace(score, deployment=replace(score.deployment, type="realtime"))
    spec = endpoint_spec(realtime, "s3://b/m.tar.gz", '"etag"', "image", ROLE)
    assert spec.config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    assert spec.config["ProductionVariants"][0]["InitialInstanceCount"] == 1 and spec.scaling is None
    assert len(spec.config_name) <= 63 and len(spec.model_name) <= 63
    assert endpoint_spec(realtime, "s3://b/m.tar.gz", '"other"', "image", ROLE).model_name != spec.model_name
    local = replace(score, deployment=replace(score.deployment, type="local"))
    with pytest.raises(PlexusError, match="deploys locally"):
        endpoint_spec(local, "s3://b/m.tar.gz", '"etag"', "image", ROLE)
    assert endpoint_spec(local.with_deployment(type="serverless"), "s3://b/m.tar.gz", '"etag"', "image", ROLE)


def test_predict_through_an_endpoint_sends_the_json_contract() -> None:
    import io
    import json

    from plexus_train.predict import predict_endpoint

    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    answer = {"value": "billing", "confidence": 0.9, "probabilities": {"billing": 0.9, "shipping": 0.1}}
    with Stubber(runtime) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": io.BytesIO(json.dumps(answer).encode())},
            {
                "EndpointName": "e",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": b'{"text": "refund"}',
            },
        )
        assert predict_endpoint(runtime, "e", ["refund"]) == [answer]


def trained_workspace(trained: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Any, Path]:
    """A copy of the trained project as the working directory, its outputs published: (root, score, model dir)."""
    work = shutil.copytree(trained, tmp_path / "work")
    monkeypatch.chdir(work)
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    return work, score, work / "models" / "test-scorecard-v-1-0" / "ticket-topic"


def test_a_local_retrain_is_uploaded_and_served_then_a_rerun_is_a_no_op(
    sandbox, trained: Path, tmp_path: Path, monkeypatch
) -> None:
    from plexus_train import datasources
    from plexus_train.platforms.local import LocalPlatform

    work, score, local = trained_workspace(trained, tmp_path, monkeypatch)
    chosen = provisioner(work / "models")
    first = chosen.provision(score)
    assert first.model.origin == f"s3://{BUCKET}/{CANONICAL}: uploaded from {local}/, the bucket holds no model yet"
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    assert s3.head_object(Bucket=BUCKET, Key=CANONICAL)["Metadata"] == {DIGEST_METADATA: tree_digest(local)}
    old_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    dataset = datasources.load(datasources.resolve("tickets", work / "datasources"), "text", "topic")
    LocalPlatform(root=work / "models").train(score.with_overrides(epochs=1, seed=7), dataset)
    retrained = tree_digest(local)
    with playing_updates(chosen) as stubber:
        second = chosen.provision(score)
        stubber.assert_no_pending_responses()
    assert second.model.origin.startswith(
        f"s3://{BUCKET}/{CANONICAL}: uploaded from {local}/, the local artifacts changed"
    )
    assert s3.head_object(Bucket=BUCKET, Key=CANONICAL)["Metadata"] == {DIGEST_METADATA: retrained}
    new_config = _new_config_name(chosen, score)
    assert actions(second) == [
        (MODEL_KIND, CREATE),
        (CONFIG_KIND, CREATE),
        (ENDPOINT_KIND, UPDATE),
        (CONFIG_KIND, DELETE),
        (MODEL_KIND, DELETE),
    ]
    update = second.plan.pending[2]
    assert (name(update), update.before["EndpointConfigName"], update.after) == (
        ENDPOINT,
        old_config,
        {"EndpointConfigName": new_config},
    )
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == new_config

    third = chosen.provision(score)
    assert third.plan.pending == ()
    assert (
        third.model.origin
        == f"s3://{BUCKET}/{CANONICAL}: the local artifacts, uploaded earlier (sha256 {retrained[:12]})"
    )


def test_a_sagemaker_jobs_model_is_served_unless_the_local_artifacts_are_newer(
    sandbox, trained: Path, tmp_path: Path, monkeypatch
) -> None:
    work, score, local = trained_workspace(trained, tmp_path, monkeypatch)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=CANONICAL, Body=b"a job's model archive")  # as _publish_model copies it
    chosen = provisioner(work / "models")
    served = chosen.provision(score)
    assert served.model.origin.startswith(f"s3://{BUCKET}/{CANONICAL}: a SageMaker job's model (stored ")
    assert served.model.origin.endswith(f"newer than the local artifacts in {local}/, which are not used")
    assert s3.get_object(Bucket=BUCKET, Key=CANONICAL)["Body"].read() == b"a job's model archive"

    later = time.time() + 3600  # retrained locally after the job
    for path in local.rglob("*"):
        os.utime(path, (later, later))
    with playing_updates(chosen):
        replaced = chosen.provision(score)
    origin = replaced.model.origin
    assert "uploaded from" in origin and "the local artifacts are newer than the bucket's model" in origin
    assert s3.head_object(Bucket=BUCKET, Key=CANONICAL)["Metadata"] == {DIGEST_METADATA: tree_digest(local)}
    assert (replaced.plan.pending[2].address, replaced.plan.pending[2].actions) == (
        f"{ENDPOINT_KIND}.{ENDPOINT}",
        UPDATE,
    )


def test_without_local_artifacts_the_buckets_model_is_served_as_before(sandbox, trained: Path, tmp_path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic", trained / "scorecards")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=CANONICAL, Body=b"a job's model archive")
    result = provisioner(tmp_path / "no-models").provision(score)
    assert result.model.origin == f"s3://{BUCKET}/{CANONICAL}: no local artifacts"
    assert actions(result)[0] == (MODEL_KIND, CREATE)


def test_choose_model_uploads_changed_or_newer_local_artifacts_only() -> None:
    local = LocalModel(Path("models/a/b"), "d" * 64, modified=2_000.0)
    stored_at = datetime.fromtimestamp(1_000.0, UTC)
    ours = {"ETag": '"e"', "LastModified": stored_at, "Metadata": {DIGEST_METADATA: "d" * 64}}
    earlier = {**ours, "Metadata": {DIGEST_METADATA: "0" * 64}}
    jobs = {"ETag": '"e"', "LastModified": stored_at, "Metadata": {}}
    newer_job = {**jobs, "LastModified": datetime.fromtimestamp(3_000.0, UTC)}
    assert choose_model(None, jobs) == (USE_BUCKET, "no local artifacts")
    assert choose_model(local, None) == (UPLOAD_LOCAL, "the bucket holds no model yet")
    assert choose_model(local, ours)[0] == USE_BUCKET
    assert choose_model(local, earlier)[0] == UPLOAD_LOCAL
    assert choose_model(local, jobs)[0] == UPLOAD_LOCAL
    assert choose_model(local, newer_job)[0] == USE_BUCKET


SCORE_ARGS = ("--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--env", "test")


def written() -> dict[str, int]:
    """What provisioning writes, counted: model archives in the bucket, SageMaker models, configs, endpoints."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    return {
        "archives": len(s3.list_objects_v2(Bucket=BUCKET, Prefix="models/").get("Contents", [])),
        "models": len(sagemaker.list_models()["Models"]),
        "configs": len(sagemaker.list_endpoint_configs()["EndpointConfigs"]),
        "endpoints": len(sagemaker.list_endpoints()["Endpoints"]),
    }


def test_plan_shows_the_upload_and_the_endpoint_it_would_create_and_writes_nothing(
    sandbox, trained: Path, tmp_path: Path, monkeypatch, plexus
) -> None:
    import json

    trained_workspace(trained, tmp_path, monkeypatch)
    shown = plexus("provision", "endpoint", *SCORE_ARGS, "--plan")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == "Plan for test (scorecards/test.yaml), account 123456789012, us-east-1"
    assert lines[1].startswith(f"model: s3://{BUCKET}/{CANONICAL}: to be uploaded from ")
    assert f"  + s3_object.{BUCKET}/{CANONICAL}  (the bucket holds no model yet)" in lines
    assert f"  + {MODEL_KIND}.{ENDPOINT}-m(after upload)  (does not exist)" in lines
    assert f"  + {ENDPOINT_KIND}.{ENDPOINT}  (does not exist)" in lines
    assert lines[-1] == "Plan: 4 to add, 0 to change, 0 to destroy."
    assert plexus("provision", "endpoint", *SCORE_ARGS, "--plan", "--detailed-exitcode").code == 2

    document = json.loads(plexus("provision", "endpoint", *SCORE_ARGS, "--plan", "--json").out)
    assert (document["format_version"], document["tool"], document["environment"]) == ("1.1", "plexus", "test")
    assert document["summary"] == {"add": 4, "change": 0, "destroy": 0}
    assert document["manifest"] == "scorecards/test.yaml" and len(document["manifest_digest"]) == 64
    addresses = [change["address"] for change in document["resource_changes"]]
    assert addresses == sorted(addresses)
    calls = {call["action"] for change in document["resource_changes"] for call in change["calls"]}
    assert calls == {
        "s3:PutObject",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
    }
    assert written() == {"archives": 0, "models": 0, "configs": 0, "endpoints": 0}


def test_a_plan_is_what_provisioning_then_sends_call_for_call(
    sandbox, trained: Path, tmp_path: Path, monkeypatch
) -> None:
    from plexus_train import provision

    work, score, _ = trained_workspace(trained, tmp_path, monkeypatch)
    chosen = provisioner(work / "models")
    chosen.provision(score)
    old = boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    boto3.client("s3").put_object(Bucket=BUCKET, Key=CANONICAL, Body=b"a newer job's model archive")

    preview = chosen.plan(score, chosen.find(score))
    assert [(c.kind, c.actions) for c in preview.pending] == [
        (MODEL_KIND, CREATE),
        (CONFIG_KIND, CREATE),
        (ENDPOINT_KIND, UPDATE),
        (CONFIG_KIND, DELETE),
        (MODEL_KIND, DELETE),
    ]
    assert preview.pending[3].address == f"{CONFIG_KIND}.{old}"
    sent: list = []
    real_send = provision.send
    monkeypatch.setattr(
        provision, "send", lambda clients, request, **kw: sent.append(request) or real_send(clients, request, **kw)
    )
    with playing_updates(chosen):
        result = chosen.provision(score)
    assert [c.to_json() for c in result.plan.changes] == [c.to_json() for c in preview.changes]
    assert result.plan.observed_digest == preview.observed_digest
    assert sent == [request for change in preview.pending for request in change.calls]
    assert written() == {"archives": 1, "models": 1, "configs": 1, "endpoints": 1}


def test_a_plan_with_nothing_to_do_says_so_and_exits_zero_with_detailed_exitcode(
    sandbox, trained: Path, tmp_path: Path, monkeypatch, plexus
) -> None:
    trained_workspace(trained, tmp_path, monkeypatch)
    assert plexus("provision", "endpoint", *SCORE_ARGS).code == 0
    shown = plexus("provision", "endpoint", *SCORE_ARGS, "--plan", "--detailed-exitcode")
    assert shown.code == 0, shown.err
    assert f"  = {ENDPOINT_KIND}.{ENDPOINT}: already serves {ENDPOINT}-c" in shown.out
    assert shown.out.splitlines()[-1] == "No changes. Infrastructure matches scorecards/test.yaml."


def test_json_and_detailed_exitcode_are_plan_options(plexus, capsys) -> None:
    for option in ("--json", "--detailed-exitcode"):
        with pytest.raises(SystemExit) as exited:
            plexus("provision", "endpoint", *SCORE_ARGS, option)
        assert exited.value.code == 1
        assert "apply only with --plan" in capsys.readouterr().err


def test_a_plan_shows_a_retrain_replacing_the_uploaded_model_before_uploading_it(
    sandbox, trained: Path, tmp_path: Path, monkeypatch, plexus
) -> None:
    *_, local = trained_workspace(trained, tmp_path, monkeypatch)
    assert plexus("provision", "endpoint", *SCORE_ARGS).code == 0
    uploaded = tree_digest(local)
    (local / "training_history.json").write_text("[]\n")  # what a retrain rewrites, in small
    shown = plexus("provision", "endpoint", *SCORE_ARGS, "--plan", "--detailed-exitcode")
    assert shown.code == 2, shown.err
    assert f"  ~ s3_object.{BUCKET}/{CANONICAL}  (the local artifacts changed since their upload (sha256 " in shown.out
    assert f"      ~ {DIGEST_METADATA}: {uploaded} → {tree_digest(local)}" in shown.out
    assert f"  ~ {ENDPOINT_KIND}.{ENDPOINT}  (serves {ENDPOINT}-c" in shown.out
    assert "Plan: 2 to add, 2 to change, 2 to destroy." in shown.out
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=CANONICAL)
    assert head["Metadata"] == {DIGEST_METADATA: uploaded}  # nothing was uploaded


def test_the_model_is_created_once_its_new_role_is_assumable(
    sandbox, trained: Path, tmp_path: Path, monkeypatch
) -> None:
    """SageMaker checks a model's execution role as it creates it; a role IAM has not spread yet is refused with
    a ValidationException (moto accepts any role, so two such answers are injected), retried until it passes."""
    from tests.faults import Answer, Injector, installed

    _, score, _ = trained_workspace(trained, tmp_path, monkeypatch)
    message = f"Could not assume role {ROLE}. Please ensure that the role exists and allows principal sagemaker"
    injector = Injector([Answer(["sagemaker:CreateModel"], ("ValidationException", 400), times=2, message=message)])
    with installed(injector):
        result = provisioner(tmp_path / "work" / "models").provision(score)
    assert injector.injected == {"ValidationException": 2}
    assert actions(result)[0] == (MODEL_KIND, CREATE)
    assert len(boto3.client("sagemaker").list_models()["Models"]) == 1
