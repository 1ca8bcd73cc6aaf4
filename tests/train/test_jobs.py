"""Jobs a pipeline can drive and managed spot training, against the moto server: `--no-wait` and `--attach`, the spot
fields and checkpoint configuration of the request, the max-wait rule SageMaker enforces, the closing line's
training vs billable time (moto reports neither: botocore's Stubber answers that DescribeTrainingJob), and the
metric regexes against the lines the entry really prints."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from plexus_infra.core.aws import Clients
from plexus_infra.environments import TrainingOutputs
from plexus_train.platforms.sagemaker import METRIC_DEFINITIONS, SageMakerPlatform
from plexus_train.scorecards import find_score
from tests.train.helpers import BUCKET, ROLE, SplitClient, StatusRecorder, plexus_cli, publish_outputs, set_training

SCORE = ("--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic")
PATH = "test-scorecard-v-1-0/ticket-topic"
JOB = "test-scorecard-v-1-0--ticket-topic-fixed"


def platform(reporter: StatusRecorder) -> SageMakerPlatform:
    return SageMakerPlatform(
        Clients("us-east-1"), TrainingOutputs(BUCKET, ROLE), reporter, job_name=lambda _: JOB, sleep=lambda _: None
    )


def test_a_spot_job_asks_for_spot_a_max_wait_and_checkpoints_under_models(project: Path) -> None:
    set_training(project, spot=True, max_runtime_seconds=3600, max_wait_seconds=7200)
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    request = platform(StatusRecorder()).job_request(JOB, score, score.config)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/models/{PATH}/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["HyperParameters"]["plexus_checkpoints"] == "true"


def test_an_on_demand_job_has_no_spot_fields_and_no_checkpoints(project: Path) -> None:
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    request = platform(StatusRecorder()).job_request(JOB, score, score.config)
    assert "EnableManagedSpotTraining" not in request and "CheckpointConfig" not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86_400}


def test_spot_max_wait_defaults_to_twice_the_runtime(project: Path) -> None:
    set_training(project, spot=True, max_runtime_seconds=3600)
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    assert platform(StatusRecorder()).job_request(JOB, score, score.config)["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600,
        "MaxWaitTimeInSeconds": 7200,
    }


def test_a_spot_max_wait_below_the_runtime_is_one_line_before_any_upload(sandbox, project: Path) -> None:
    """SageMaker refuses MaxWaitTimeInSeconds < MaxRuntimeInSeconds (API_StoppingCondition); moto accepts it."""
    publish_outputs()
    set_training(project, spot=True, max_runtime_seconds=3600, max_wait_seconds=600)
    ran = plexus_cli("train", *SCORE, "--platform", "sagemaker", "--env", "test", cwd=project)
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1
    assert re.match(
        r"error: scorecards/test\.yaml:\d+:\d+: scores\[0\]\.training\.max_wait_seconds: 600 is below", ran.stderr
    )
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)


def test_no_wait_prints_the_job_and_attach_publishes_its_model(sandbox, project: Path) -> None:
    publish_outputs()
    created = plexus_cli("train", *SCORE, "--platform", "sagemaker", "--env", "test", "--no-wait", cwd=project)
    assert created.returncode == 0, created.stderr
    (job,) = re.findall(r"training job (\S+) created", created.stdout)
    assert boto3.client("sagemaker").describe_training_job(TrainingJobName=job)["TrainingJobName"] == job
    assert "model:" not in created.stdout
    # moto runs no container: put the job's model where SageMaker would write it.
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"models/{PATH}/jobs/{job}/output/model.tar.gz", Body=b"model archive")

    attached = plexus_cli("train", "--attach", job, "--env", "test", cwd=project)

    assert attached.returncode == 0, attached.stderr
    assert f"attached to training job {job}" in attached.stdout and "Completed" in attached.stdout
    assert s3.get_object(Bucket=BUCKET, Key=f"models/{PATH}/model.tar.gz")["Body"].read() == b"model archive"


def test_no_wait_is_refused_where_the_training_runs_here(project: Path) -> None:
    for flags in (("--platform", "local"), ("--instance-type", "local")):
        ran = plexus_cli("train", *SCORE, *flags, "--no-wait", cwd=project)
        assert ran.returncode == 1 and ran.stderr.startswith("error: --no-wait applies to SageMaker jobs")


def test_attach_to_an_unknown_job_is_one_line(sandbox, project: Path) -> None:
    publish_outputs()
    ran = plexus_cli("train", "--attach", "no-such-job", "--env", "test", cwd=project)
    assert ran.returncode == 1
    assert ran.stderr == "error: no training job no-such-job in us-east-1 (sagemaker:DescribeTrainingJob)\n"


def test_attach_and_a_scorecard_do_not_go_together(project: Path) -> None:
    ran = plexus_cli("train", "--attach", "x", *SCORE, cwd=project)
    assert ran.returncode == 1 and "not both" in ran.stderr
    assert plexus_cli("train", cwd=project).returncode == 1


def test_the_closing_line_reports_training_and_billable_seconds(sandbox, project: Path) -> None:
    from plexus_train import datasources

    publish_outputs()
    set_training(project, spot=True)
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    reporter = StatusRecorder()
    chosen = platform(reporter)
    output = f"s3://{BUCKET}/models/{PATH}/jobs/{JOB}/output/model.tar.gz"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=output.removeprefix(f"s3://{BUCKET}/"), Body=b"m")
    # moto's DescribeTrainingJob has no TrainingTimeInSeconds or BillableTimeInSeconds: stub that call alone.
    sagemaker = boto3.client("sagemaker")
    stubber = Stubber(sagemaker)
    stubber.add_response(
        "describe_training_job",
        {
            "TrainingJobName": JOB,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": output},
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ResourceConfig": {"VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86_400, "MaxWaitTimeInSeconds": 172_800},
            "CreationTime": "2025-01-01T00:00:00Z",
            "EnableManagedSpotTraining": True,
            "TrainingTimeInSeconds": 400,
            "BillableTimeInSeconds": 120,
        },
        {"TrainingJobName": JOB},
    )
    chosen.clients._clients["sagemaker"] = SplitClient(
        stubbed=sagemaker, create=chosen.clients.sagemaker.create_training_job
    )
    with stubber:
        chosen.train(score, dataset)
    assert "training time 400 s, billable time 120 s (managed spot saved 70%)" in reporter.lines


def test_the_metric_regexes_match_the_lines_the_entry_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """SageMaker applies each MetricDefinition's regex to the job's log lines: feed it what LogReporter prints."""
    from plexus_train.container.reporting import EpochResult, LogReporter
    from plexus_train.container.trainer import TrainedClassifier, _summary

    epoch = EpochResult(3, 0.5, 0.4321, 0.875, 0.8, 0.7, 0.765, 1e-4, 10, 1.0, 1.0, 0.8)
    reporter = LogReporter()
    reporter.start(3, 2)
    reporter.epoch(epoch)
    reporter.finish(_summary(TrainedClassifier(None, None, [], None, [epoch], best_epoch=1)))
    lines = capsys.readouterr().out.splitlines()
    found = {}
    for definition in METRIC_DEFINITIONS:
        matches = [m.group(1) for line in lines if (m := re.search(definition["Regex"], line))]
        assert len(matches) == 1, (definition, lines)
        found[definition["Name"]] = float(matches[0])
    assert found == {
        "validation:macro_f1": 0.765,
        "epoch:validation_loss": 0.4321,
        "epoch:validation_accuracy": 0.875,
        "epoch:validation_macro_f1": 0.765,
    }
    assert len(METRIC_DEFINITIONS) <= 40  # SageMaker's limit per job
