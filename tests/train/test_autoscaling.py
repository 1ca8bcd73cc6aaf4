"""`plexus provision` as Plexus spells it: no subcommand, the score's `deployment:` block and its flags, and
Application Auto Scaling for a realtime endpoint (scalable target + target-tracking policy), against the moto
server: created once, a rerun changes nothing, a changed bound is one update, `provision delete` removes them."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from plexus_infra.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE
from plexus_train.provision import (
    POLICY_KIND,
    TARGET_KIND,
    EndpointSpec,
    Observed,
    Provisioner,
    diff_scaling,
    endpoint_spec,
)
from plexus_train.scorecards import find_score
from tests.train.helpers import BUCKET, ROLE, publish_outputs

INTENT = ("--scorecard", "Call Center QA", "--score", "Call Intent", "--env", "test")
ENDPOINT = "contactics--call-intent"
RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture
def served(sandbox, plexus_project: Path) -> Path:
    """The outputs published and a model in the bucket for Call Intent (a job's, as SageMaker would leave it)."""
    publish_outputs()
    boto3.client("s3").put_object(Bucket=BUCKET, Key="models/contactics/call-intent/model.tar.gz", Body=b"a model")
    return plexus_project


def scaling() -> tuple[list[dict], list[dict]]:
    autoscaling = boto3.client("application-autoscaling")
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return targets, policies


def test_a_realtime_endpoint_gets_autoscaling_once_and_a_rerun_changes_nothing(served: Path, plexus) -> None:
    ran = plexus("provision", *INTENT)  # no subcommand: provision endpoint
    assert ran.code == 0, ran.err
    assert f"+ created scalable target {ENDPOINT}/AllTraffic" in ran.out
    assert f"+ created scaling policy {ENDPOINT}-invocations" in ran.out
    config = boto3.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    (target,), (policy,) = scaling()
    assert (target["ResourceId"], target["ScalableDimension"]) == (RESOURCE, DIMENSION)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (policy["PolicyName"], policy["PolicyType"]) == (f"{ENDPOINT}-invocations", "TargetTrackingScaling")
    assert tracking["TargetValue"] == 20.0
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (300, 60)

    again = plexus("provision", *INTENT)
    assert again.code == 0, again.err
    assert "InService (no changes)" in again.out and "created" not in again.out
    assert f"no-op: scalable target {ENDPOINT}/AllTraffic already scales 1–3 instances" in again.out
    assert f"no-op: scaling policy {ENDPOINT}-invocations already tracks 20 invocations per instance" in again.out
    status = plexus("provision", "status", *INTENT)
    assert "autoscaling: 1–3 instances, tracking 20 invocations per instance" in status.out


def test_a_changed_bound_is_one_update_of_the_target_alone(served: Path, plexus) -> None:
    assert plexus("provision", *INTENT).code == 0
    planned = plexus("provision", *INTENT, "--max-instances", "5", "--plan", "--json", "--detailed-exitcode")
    assert planned.code == 2, planned.err
    pending = [c for c in json.loads(planned.out)["resource_changes"] if c["actions"] != ["no-op"]]
    assert [(c["address"], c["actions"], c["changed_attributes"]) for c in pending] == [
        (f"{TARGET_KIND}.{ENDPOINT}/AllTraffic", ["update"], ["MaxCapacity"])
    ]
    assert [call["action"] for call in pending[0]["calls"]] == ["application-autoscaling:RegisterScalableTarget"]
    text = plexus("provision", *INTENT, "--max-instances", "5", "--plan")
    assert f"~ {TARGET_KIND}.{ENDPOINT}/AllTraffic  (differs from the score's deployment)" in text.out
    assert "~ MaxCapacity: 3 → 5" in text.out and "Plan: 0 to add, 1 to change, 0 to destroy." in text.out

    applied = plexus("provision", *INTENT, "--max-instances", "5")
    assert applied.code == 0, applied.err
    assert f"~ updated scalable target {ENDPOINT}/AllTraffic: 3 → 5" in applied.out
    (target,), (_policy,) = scaling()
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 5)
    assert "InService (no changes)" in plexus("provision", *INTENT, "--max-instances", "5").out


def test_delete_removes_the_policy_and_the_target_with_the_endpoint(served: Path, plexus) -> None:
    assert plexus("provision", *INTENT).code == 0
    ran = plexus("provision", "delete", *INTENT)
    assert ran.code == 0, ran.err
    lines = [line for line in ran.out.splitlines() if line.startswith("-")]
    assert lines[:3] == [
        f"- deleted scaling policy {ENDPOINT}-invocations",
        f"- deleted scalable target {ENDPOINT}/AllTraffic",
        f"- deleted endpoint {ENDPOINT}",
    ]
    assert scaling() == ([], [])
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_the_deployment_flags_override_the_block(served: Path, plexus) -> None:
    ran = plexus("provision", *INTENT, "--deployment-type", "serverless", "--memory", "3072", "--max-concurrency", "7")
    assert ran.code == 0, ran.err
    sagemaker = boto3.client("sagemaker")
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 7}
    assert scaling() == ([], [])  # serverless: nothing to scale by instances
    bad = plexus("provision", *INTENT, "--min-instances", "4")
    assert bad.code == 1 and bad.err == "error: score 'Call Intent': max_instances 3 is below min_instances 4\n"


def test_a_realtime_endpoint_without_room_to_scale_gets_no_autoscaling(served: Path, plexus) -> None:
    ran = plexus("provision", *INTENT, "--max-instances", "1")
    assert ran.code == 0, ran.err
    assert "scalable target" not in ran.out and scaling() == ([], [])


def _spec(plexus_project: Path, **deployment) -> EndpointSpec:
    score = find_score("Call Center QA", "Call Intent").with_deployment(**deployment)
    return endpoint_spec(score, f"s3://{BUCKET}/m.tar.gz", '"etag"', "image", ROLE)


LIVE_TARGET = {"MinCapacity": 1, "MaxCapacity": 3}
LIVE_POLICY = {"TargetValue": 20.0, "MetricType": "SageMakerVariantInvocationsPerInstance"}
LIVE_POLICY |= {"ScaleInCooldown": 300, "ScaleOutCooldown": 60}


def test_autoscaling_no_longer_wanted_is_deleted_policy_first(plexus_project: Path) -> None:
    spec = _spec(plexus_project, type="serverless")
    observed = Observed(None, None, None, target=LIVE_TARGET, policy=LIVE_POLICY)
    changes = diff_scaling(spec, observed, moved=False)
    assert [(c.kind, c.actions) for c in changes] == [(POLICY_KIND, DELETE), (TARGET_KIND, DELETE)]
    assert [c.calls[0].operation for c in changes] == ["DeleteScalingPolicy", "DeregisterScalableTarget"]
    assert diff_scaling(spec, Observed(None, None, None), moved=False) == []


def test_a_move_to_another_instance_type_replaces_the_autoscaling_around_the_update(plexus_project: Path) -> None:
    spec = _spec(plexus_project, instance_type="ml.c5.xlarge")
    observed = Observed(None, None, None, target=LIVE_TARGET, policy=LIVE_POLICY)
    assert [c.actions for c in diff_scaling(spec, observed, moved=False)] == [NOOP, NOOP]
    changes = diff_scaling(spec, observed, moved=True)
    assert [(c.kind, c.actions) for c in changes] == [(TARGET_KIND, REPLACE), (POLICY_KIND, REPLACE)]
    assert [[call.operation for call in c.calls] for c in changes] == [
        ["DeregisterScalableTarget", "RegisterScalableTarget"],
        ["DeleteScalingPolicy", "PutScalingPolicy"],
    ]
    wider = diff_scaling(_spec(plexus_project, max_instances=4), observed, moved=False)
    assert [(c.kind, c.actions, c.changed) for c in wider] == [
        (TARGET_KIND, UPDATE, ("MaxCapacity",)),
        (POLICY_KIND, NOOP, ()),
    ]
    fresh = diff_scaling(spec, Observed(None, None, None), moved=True)
    assert [c.actions for c in fresh] == [CREATE, CREATE]


def test_apply_removes_autoscaling_before_the_endpoint_moves_and_adds_it_back_once_in_service(
    plexus_project: Path, monkeypatch
) -> None:
    """The order of the calls apply sends for a move to another instance type (AWS refuses the update otherwise)."""
    from plexus_infra.environments import TrainingOutputs
    from plexus_infra.plan import Plan
    from plexus_train import provision
    from plexus_train.provision import diff
    from tests.train.helpers import StatusRecorder

    spec = _spec(plexus_project, instance_type="ml.c5.xlarge")
    score = find_score("Call Center QA", "Call Intent")
    old = f"{ENDPOINT}-c{'0' * 10}"
    observed = Observed(
        {"Image": "image"},
        {"ModelNames": [spec.model_name]},
        {"EndpointConfigName": old, "EndpointStatus": "InService"},
        served=(f"{ENDPOINT}-m{'1' * 10}",),
        served_instance_type="ml.m5.large",
        target=LIVE_TARGET,
        policy=LIVE_POLICY,
    )
    changes = diff(score, spec, observed)
    plan = Plan("test", "x.yaml", "", "1", "us-east-1", "apply", changes, "")
    sent: list[str] = []
    monkeypatch.setattr(provision, "send", lambda _clients, request, sleep: sent.append(request.operation))
    chosen = Provisioner(None, TrainingOutputs(BUCKET, ROLE), StatusRecorder(), "test", sleep=lambda _: None)  # type: ignore[arg-type]
    monkeypatch.setattr(chosen, "_wait", lambda name: {"EndpointConfigName": spec.config_name})
    chosen.apply(plan)
    assert sent == [
        "DeleteScalingPolicy",
        "DeregisterScalableTarget",
        "UpdateEndpoint",
        "RegisterScalableTarget",
        "PutScalingPolicy",
        "DeleteEndpointConfig",
        "DeleteModel",
    ]
