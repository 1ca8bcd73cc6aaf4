"""`plexus train --platform sagemaker` and `plexus provision endpoint` while AWS misbehaves: throttling and 5xx on
a quarter of all calls (seeded), and AccessDenied on one action. The faults are real wire-format AWS errors handed
to botocore by tests/faults.py, so botocore's standard retries and the module's own handling are under test.
Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from plexus_train.locations import split_s3_uri
from tests.faults import Answer, Injector, RandomFaults, installed
from tests.train.helpers import BUCKET, Ran, publish_outputs

FAULT_RATE = 0.25
SEEDS = tuple(range(1, 7))
SCORE_ARGS = ("--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--env", "test")
PATH = "test-scorecard-v-1-0/ticket-topic"
DATA_KEY = f"training-data/{PATH}/data.csv"
CODE_KEY = f"training-code/{PATH}/sourcedir.tar.gz"
MODEL_KEY = f"models/{PATH}/model.tar.gz"
ENDPOINT = "test-scorecard-v-1-0--ticket-topic"
MODEL_ARCHIVE = b"the job's model archive"
pytestmark = pytest.mark.usefixtures("sandbox", "fast_backoff")


def play_the_container() -> None:
    """What the training container would do: put model.tar.gz where the job says it is (moto runs nothing and
    invents S3ModelArtifacts). Uses a plain client, so no faults reach it."""
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    for summary in sagemaker.list_training_jobs()["TrainingJobSummaries"]:
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        bucket, key = split_s3_uri(job["ModelArtifacts"]["S3ModelArtifacts"])
        s3.put_object(Bucket=bucket, Key=key, Body=MODEL_ARCHIVE)


def under_faults(plexus: Callable[..., Ran], injector: Injector, *argv: str) -> tuple[int, str, str]:
    """The real entry point in-process (the `plexus` fixture), with the injector on every client it makes."""
    with installed(injector):
        ran = plexus(*argv)
    return ran.code, ran.out, ran.err


def keys() -> set[str]:
    return {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def counts() -> dict[str, int]:
    sagemaker = boto3.client("sagemaker")
    return {
        "jobs": len(sagemaker.list_training_jobs()["TrainingJobSummaries"]),
        "models": len(sagemaker.list_models()["Models"]),
        "configs": len(sagemaker.list_endpoint_configs()["EndpointConfigs"]),
        "endpoints": len(sagemaker.list_endpoints()["Endpoints"]),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_train_on_sagemaker_and_provision_converge_with_a_quarter_of_calls_throttled_or_failing(
    capsys: pytest.CaptureFixture[str], plexus: Callable[..., Ran], project: Path, seed: int
) -> None:
    publish_outputs()
    training = Injector(
        [RandomFaults(rate=FAULT_RATE, seed=seed)], on_success={"sagemaker:CreateTrainingJob": play_the_container}
    )
    code, out, err = under_faults(plexus, training, "train", *SCORE_ARGS, "--platform", "sagemaker")
    assert code == 0, err
    assert f"model: s3://{BUCKET}/{MODEL_KEY}" in out
    assert {DATA_KEY, CODE_KEY, MODEL_KEY} <= keys()
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key=MODEL_KEY)["Body"].read() == MODEL_ARCHIVE
    assert len(s3.get_object(Bucket=BUCKET, Key=DATA_KEY)["Body"].read().decode().splitlines()) == 241
    assert counts()["jobs"] == 1  # a create answered with a fault never reached SageMaker: no duplicate job

    provisioning = Injector([RandomFaults(rate=FAULT_RATE, seed=seed + 100)])
    code, out, err = under_faults(plexus, provisioning, "provision", "endpoint", *SCORE_ARGS)
    assert code == 0, err
    assert f"endpoint {ENDPOINT}: InService (updated)" in out
    assert counts() == {"jobs": 1, "models": 1, "configs": 1, "endpoints": 1}
    code, out, err = under_faults(plexus, provisioning, "provision", "endpoint", *SCORE_ARGS)
    assert code == 0, err
    assert "InService (no changes)" in out and "created" not in out
    assert counts() == {"jobs": 1, "models": 1, "configs": 1, "endpoints": 1}
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    config = boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = boto3.client("sagemaker").describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{MODEL_KEY}"

    for injector in (training, provisioning):
        assert injector.surfaced == 0, injector.report()
    assert training.total + provisioning.total >= 1  # every seed here injects something
    with capsys.disabled():
        print(
            f"\n[train faults seed={seed}, rate={FAULT_RATE}] train --platform sagemaker: {training.report()}; "
            f"provision endpoint x2: {provisioning.report()}; all survived"
        )


DENIED = {
    "sagemaker:CreateTrainingJob": (
        ("AccessDeniedException", 400),
        "error: sagemaker:CreateTrainingJob training job test-scorecard-v-1-0--ticket-topic-",
    ),
    "s3:PutObject": (("AccessDenied", 403), f"error: s3:PutObject s3://{BUCKET}/{DATA_KEY}: AccessDenied"),
    "ssm:GetParameters": (
        ("AccessDeniedException", 400),
        "error: ssm:GetParameters outputs of environment test: AccessDeniedException",
    ),
}


@pytest.mark.parametrize("denied", sorted(DENIED))
def test_access_denied_while_training_is_one_line_naming_action_and_resource_and_nothing_follows_it(
    plexus: Callable[..., Ran], project: Path, denied: str
) -> None:
    publish_outputs()
    fault, message = DENIED[denied]
    injector = Injector([Answer({denied}, fault)])
    code, out, err = under_faults(plexus, injector, "train", *SCORE_ARGS, "--platform", "sagemaker")
    assert code == 1
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert "the credentials lack this permission" in err
    # Reads write nothing; a denied write is the last write attempted (the lock-free module has nothing to undo).
    assert injector.writes == [] if denied == "ssm:GetParameters" else injector.writes[-1] == denied
    assert counts()["jobs"] == 0 and MODEL_KEY not in keys()


def test_access_denied_on_create_endpoint_is_one_line_and_a_rerun_with_permission_converges(
    plexus: Callable[..., Ran], project: Path
) -> None:
    publish_outputs()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=MODEL_ARCHIVE)
    injector = Injector([Answer({"sagemaker:CreateEndpoint"}, ("AccessDeniedException", 400))])
    code, out, err = under_faults(plexus, injector, "provision", "endpoint", *SCORE_ARGS)
    assert code == 1
    assert err.startswith(f"error: sagemaker:CreateEndpoint endpoint {ENDPOINT}: AccessDeniedException"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert injector.writes[-1] == "sagemaker:CreateEndpoint"
    assert counts() == {"jobs": 0, "models": 1, "configs": 1, "endpoints": 0}
    code, out, err = under_faults(plexus, Injector(), "provision", "endpoint", *SCORE_ARGS)
    assert code == 0, err
    assert out.count("no-op:") == 2 and f"created endpoint {ENDPOINT}" in out
    assert counts() == {"jobs": 0, "models": 1, "configs": 1, "endpoints": 1}


def each_time(operations: list[str], fault: tuple[str, int], times: int) -> list[Answer]:
    return [Answer({operation}, fault, times=times) for operation in operations]


def test_every_sagemaker_and_logs_call_of_a_training_run_survives_repeated_throttling_and_5xx(
    capsys: pytest.CaptureFixture[str], plexus: Callable[..., Ran], project: Path
) -> None:
    publish_outputs()
    calls = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "cloudwatch-logs:FilterLogEvents"]
    injector = Injector(
        [*each_time(calls, ("ThrottlingException", 400), 3), *each_time(calls[:2], ("InternalFailure", 500), 2)],
        on_success={"sagemaker:CreateTrainingJob": play_the_container},
    )
    code, _out, err = under_faults(plexus, injector, "train", *SCORE_ARGS, "--platform", "sagemaker")
    assert code == 0, err
    assert injector.injected == {"ThrottlingException": 9, "InternalFailure": 4}
    assert injector.retried_by_botocore == 13 and injector.surfaced == 0
    assert counts()["jobs"] == 1 and MODEL_KEY in keys()
    with capsys.disabled():
        print(f"\n[train faults, 5 in a row per SageMaker/Logs call] {injector.report()}; all survived")
