"""`plexus train --platform sagemaker` against the moto server: outputs, upload layout, job request, waiting,
publishing the model; the Failed path and IAM propagation use botocore's Stubber because moto completes every
job at once and never rejects a role."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from plexus_infra.core.aws import Clients
from plexus_infra.core.errors import PlexusError
from plexus_infra.environments import TrainingOutputs as Outputs
from plexus_infra.environments import resolve_target, training_outputs
from plexus_train import datasources
from plexus_train.platforms.sagemaker import SageMakerPlatform, TrainingJobFailed
from plexus_train.scorecards import find_score
from tests.train.helpers import BUCKET, ROLE, SplitClient, StatusRecorder, plexus_cli, publish_outputs

JOB = "test-scorecard-v-1-0--ticket-topic-fixed"


def platform(reporter: StatusRecorder) -> SageMakerPlatform:
    return SageMakerPlatform(
        Clients("us-east-1"), Outputs(BUCKET, ROLE), reporter, job_name=lambda _: JOB, sleep=lambda _: None
    )


def test_missing_output_names_it_and_says_to_apply(sandbox, project: Path) -> None:
    with pytest.raises(PlexusError, match=r"no output training-bucket-name \(SSM parameter /plexus/test/"):
        training_outputs(boto3.client("ssm"), resolve_target("test"))
    publish_outputs()
    assert training_outputs(boto3.client("ssm"), resolve_target("test")) == Outputs(BUCKET, ROLE)


def test_overrides_skip_ssm(sandbox, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLEXUS_S3_BUCKET", "other-bucket")
    monkeypatch.setenv("PLEXUS_SAGEMAKER_ROLE_ARN", ROLE)
    assert training_outputs(boto3.client("ssm"), resolve_target("nowhere")) == Outputs("other-bucket", ROLE)


def test_job_uploads_packages_trains_and_publishes_the_model(sandbox, project: Path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    s3 = boto3.client("s3")
    # moto runs no container: play its part by putting the job's model where SageMaker would.
    job_output = f"models/{score.path}/jobs/{JOB}/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=job_output, Body=b"model archive")
    reporter = StatusRecorder()

    result = platform(reporter).train(score, dataset)

    assert result.location == f"s3://{BUCKET}/models/test-scorecard-v-1-0/ticket-topic/model.tar.gz"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {
        "training-data/test-scorecard-v-1-0/ticket-topic/data.csv",
        "training-code/test-scorecard-v-1-0/ticket-topic/sourcedir.tar.gz",
        "models/test-scorecard-v-1-0/ticket-topic/model.tar.gz",
    } <= keys
    assert s3.get_object(Bucket=BUCKET, Key="models/test-scorecard-v-1-0/ticket-topic/model.tar.gz")["Body"].read() == (
        b"model archive"
    )
    data = s3.get_object(Bucket=BUCKET, Key="training-data/test-scorecard-v-1-0/ticket-topic/data.csv")["Body"].read()
    assert data.decode().splitlines()[0] == "text,topic" and len(data.decode().splitlines()) == 241
    code = s3.get_object(Bucket=BUCKET, Key="training-code/test-scorecard-v-1-0/ticket-topic/sourcedir.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(code["Body"].read())) as archive:
        assert {"train.py", "requirements.txt", "plexus_train/container/trainer.py"} <= set(archive.getnames())

    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=JOB)
    hps = job["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]).endswith(
        "/training-code/test-scorecard-v-1-0/ticket-topic/sourcedir.tar.gz"
    )
    assert json.loads(hps["epochs"]) == 2 and json.loads(hps["label_column"]) == "topic"
    assert json.loads(hps["embeddings_model"]) == "base_model"
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("pytorch-training:2.6-cpu-py312")
    assert any(line.startswith("Completed") for line in reporter.lines)


def test_failed_job_raises_its_failure_reason(sandbox, project: Path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    chosen = platform(StatusRecorder())
    # moto cannot fail a job: stub describe_training_job alone (on a second client); creation still goes to moto.
    sagemaker = boto3.client("sagemaker")
    stubber = Stubber(sagemaker)
    real_create = chosen.clients.sagemaker.create_training_job
    stubber.add_response(
        "describe_training_job",
        {
            "TrainingJobName": JOB,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
            "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: single class",
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ResourceConfig": {"VolumeSizeInGB": 30},
            "StoppingCondition": {},
            "CreationTime": "2025-01-01T00:00:00Z",
        },
        {"TrainingJobName": JOB},
    )
    chosen.clients._clients["sagemaker"] = SplitClient(stubbed=sagemaker, create=real_create)
    with stubber, pytest.raises(TrainingJobFailed, match=r"training job .* failed: AlgorithmError: single class"):
        chosen.train(score, dataset)
    assert boto3.client("sagemaker").describe_training_job(TrainingJobName=JOB)["TrainingJobName"] == JOB


def test_job_creation_retries_while_the_role_propagates(sandbox, project: Path) -> None:
    publish_outputs()
    chosen = platform(StatusRecorder())
    sagemaker = boto3.client("sagemaker")
    stubber = Stubber(sagemaker)
    message = "Could not assume role arn:aws:iam::123456789012:role/x"
    stubber.add_client_error("create_training_job", "ValidationException", message)
    stubber.add_client_error("create_training_job", "ValidationException", message)
    stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"})
    stubber.add_client_error("create_training_job", "ValidationException", "Invalid instance type")
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    request = chosen.job_request("x", score, score.config)
    chosen.clients._clients["sagemaker"] = sagemaker
    with stubber:
        chosen._create_job("x", request)
        with pytest.raises(PlexusError, match="Invalid instance type"):
            chosen._create_job("x", request)
        stubber.assert_no_pending_responses()


def test_cli_sagemaker_training_creates_the_job_and_reports_a_missing_model(sandbox, project: Path) -> None:
    publish_outputs()
    result = plexus_cli(
        "train", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--platform", "sagemaker",
        "--env", "test", "--epochs", "5", cwd=project,
    )  # fmt: skip
    # moto completes the job at once with an invented artifact path and no object there: say so honestly.
    assert result.returncode == 1
    assert (
        "completed but its model s3://plexus-test-training/models/test-scorecard-v-1-0/ticket-topic/jobs/"
        in result.stderr
    )
    jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["TrainingJobName"].startswith("test-scorecard-v-1-0--ticket-topic-")
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName=jobs[0]["TrainingJobName"])
    assert json.loads(described["HyperParameters"]["epochs"]) == 5


def test_missing_image_uri_asks_for_it_without_the_sdk(monkeypatch) -> None:
    from plexus_train import images

    monkeypatch.setattr(images, "_sdk_retrieve", lambda: None)  # as without the sagemaker extra
    with pytest.raises(PlexusError, match=r"set training\.image_uri in the score YAML .*pip install"):
        images.image_uri(None, "training", "2.5", "us-east-1", "ml.m5.xlarge")


@pytest.mark.parametrize(
    ("region", "instance_type", "scope", "registry", "tag"),
    [
        ("us-east-1", "ml.m5.xlarge", "training", "763104351884", "2.6-cpu-py312"),
        ("us-east-1", "ml.g5.xlarge", "training", "763104351884", "2.6-gpu-py312"),
        ("us-east-1", "ml.m5.large", "inference", "763104351884", "2.6-cpu-py312"),
        ("ap-east-1", "ml.m5.xlarge", "training", "871362719292", "2.6-cpu-py312"),
        ("ap-east-1", "ml.g5.xlarge", "inference", "871362719292", "2.6-gpu-py312"),
    ],
)
def test_image_lookup_uses_the_sdks_own_data(region, instance_type, scope, registry, tag) -> None:
    """The sagemaker extra (sagemaker-core, installed in CI) answers from the image data it ships: the account
    differs by region (ap-east-1 is an opt-in region with its own registry), cpu/gpu by instance type."""
    pytest.importorskip("sagemaker.core.image_uris", reason="the sagemaker extra is not installed")
    from plexus_train.images import image_uri

    expected = f"{registry}.dkr.ecr.{region}.amazonaws.com/pytorch-{scope}:{tag}"
    assert image_uri(None, scope, "2.6", region, instance_type) == expected


def test_a_version_the_sdk_does_not_know_is_one_line() -> None:
    pytest.importorskip("sagemaker.core.image_uris", reason="the sagemaker extra is not installed")
    from plexus_train.images import image_uri

    with pytest.raises(
        PlexusError,
        match=r"^no PyTorch 2\.99 inference image for ml\.m5\.large in us-east-1: "
        r"Unsupported pytorch version: 2\.99; set training\.inference_image_uri",
    ):
        image_uri(None, "inference", "2.99", "us-east-1", "ml.m5.large")


def test_job_log_lines_are_printed_once_each_as_they_arrive(sandbox, project: Path) -> None:
    """CloudWatch Logs in moto: two polls of a job's streams, with a new line between them."""
    reporter = StatusRecorder()
    chosen = platform(reporter)
    logs = boto3.client("logs")
    now = int(time.time() * 1000)  # CloudWatch (and moto) drop events older than 14 days
    group, stream = "/aws/sagemaker/TrainingJobs", f"{JOB}/algo-1-1700000000"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.create_log_stream(logGroupName=group, logStreamName="another-job/algo-1-1700000000")
    events = [
        {"timestamp": now, "message": "epoch 1\n"},
        {"timestamp": now + 500, "message": "epoch 2"},
    ]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    logs.put_log_events(
        logGroupName=group, logStreamName="another-job/algo-1-1700000000",
        logEvents=[{"timestamp": now + 100, "message": "not ours"}],
    )  # fmt: skip
    tick = chosen._logs(JOB)
    tick({})
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now + 1000, "message": "done"}]
    )
    tick({})
    tick({})
    assert reporter.lines == ["log: epoch 1", "log: epoch 2", "log: done"]


def test_the_job_writes_under_models_which_the_training_role_may_write(sandbox, project: Path) -> None:
    """plexus-infra's training role may write training-data/*, models/* and training-code/* only."""
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    request = platform(StatusRecorder()).job_request(JOB, score, score.config)
    output = request["OutputDataConfig"]["S3OutputPath"]
    assert output == f"s3://{BUCKET}/models/test-scorecard-v-1-0/ticket-topic/jobs"
    assert output.removeprefix(f"s3://{BUCKET}/").split("/")[0] in ("training-data", "models", "training-code")


def test_the_wait_outlasts_the_jobs_own_maximum_runtime(sandbox, project: Path, monkeypatch) -> None:
    from dataclasses import replace

    from plexus_train.platforms import sagemaker

    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    long = replace(score, training=replace(score.training, max_runtime_seconds=5 * 86_400))
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"models/{score.path}/jobs/{JOB}/output/model.tar.gz", Body=b"m")
    timeouts: list[float] = []
    real_wait = sagemaker.wait
    monkeypatch.setattr(
        sagemaker, "wait", lambda waiter, *a, **k: timeouts.append(waiter.timeout) or real_wait(waiter, *a, **k)
    )
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    platform(StatusRecorder()).train(long, dataset)
    assert timeouts == [5 * 86_400 + 3600]
    assert sagemaker.job_waiter(score).timeout == 86_400 + 3600  # the default max_runtime_seconds, plus an hour


def test_code_is_uploaded_with_the_multipart_capable_transfer_not_one_put_object(sandbox, project: Path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"models/{score.path}/jobs/{JOB}/output/model.tar.gz", Body=b"m")
    chosen = platform(StatusRecorder())
    s3 = chosen.clients.s3
    real_put = s3.put_object

    def put_object(**request):
        # boto3's transfer sends small files as one PutObject too, but streams them from the file: never bytes.
        in_memory = isinstance(request.get("Body"), (bytes, bytearray))
        assert not (request["Key"].endswith(".tar.gz") and in_memory), "a tarball was read into memory"
        return real_put(**request)

    s3.put_object = put_object
    chosen.train(score, datasources.load(datasources.resolve("tickets"), "text", "topic"))
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=f"training-code/{score.path}/sourcedir.tar.gz")


def test_tarballs_are_reproducible_byte_for_byte(tmp_path: Path) -> None:
    from plexus_train.packaging import write_tarball

    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "b.txt").write_text("b")
    (source / "sub" / "a.bin").write_bytes(bytes(range(256)) * 100)
    first = write_tarball(source, tmp_path / "one.tar.gz").read_bytes()
    (source / "b.txt").touch()  # a new mtime, same content
    second = write_tarball(source, tmp_path / "two.tar.gz").read_bytes()
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(tmp_path / "one.tar.gz") as archive:
        assert archive.getnames() == ["b.txt", "sub/a.bin"]


def test_packaged_requirements_pin_the_transformers_major_that_saved_the_artifacts() -> None:
    from importlib.metadata import version

    from plexus_train.container.bundle import requirements

    major = int(version("transformers").split(".")[0])
    assert f"transformers>={major},<{major + 1}" in requirements().splitlines()
    assert requirements("5.2.1").splitlines()[0] == "transformers>=5,<6"
    assert not any(line.startswith("torch") for line in requirements().splitlines())  # the container's own torch
    assert {"onnx>=1.16", "onnxruntime>=1.18"} <= set(requirements().splitlines())  # the ONNX form: export, check
    serving = requirements(training=False).splitlines()
    assert "onnxruntime>=1.18" in serving and not any(line.startswith("onnx>") for line in serving)


def test_the_default_image_lookup_asks_for_pytorch_2_6_or_later_on_py312(monkeypatch) -> None:
    """transformers 5 needs torch >= 2.6; AWS publishes 2.6+ images for py312 only."""
    from plexus_train import images
    from plexus_train.scorecards import TrainingSettings

    asked: list[dict] = []
    monkeypatch.setattr(images, "_sdk_retrieve", lambda: lambda framework, region, **kw: asked.append(kw) or "uri")
    version = TrainingSettings().framework_version
    for scope in ("training", "inference"):
        assert images.image_uri(None, scope, version, "us-east-1", "ml.m5.xlarge") == "uri"
    assert [(a["version"], a["py_version"], a["image_scope"]) for a in asked] == [
        ("2.6", "py312", "training"),
        ("2.6", "py312", "inference"),
    ]
    assert tuple(int(p) for p in version.split(".")) >= (2, 6)


def test_a_model_over_the_single_copy_limit_is_published_in_parts(real_aws, project: Path) -> None:
    """S3 copies at most 5 GB in one CopyObject (InvalidRequest above it); moto copies anything, so the proxy
    keeps AWS's rule with the limit lowered to 5 MB, and the job's model is 9 MB: past boto3's 8 MB multipart
    threshold, as every model over 5 GB is."""
    real_aws.rules.copy_limit = 5 * 1024 * 1024
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    s3 = boto3.client("s3")
    archive = bytes(range(256)) * (9 * 4096)
    job_output = f"models/{score.path}/jobs/{JOB}/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=job_output, Body=archive)
    with pytest.raises(s3.exceptions.ClientError, match="larger than the maximum allowable size"):
        s3.copy_object(Bucket=BUCKET, Key="one-call-copy", CopySource={"Bucket": BUCKET, "Key": job_output})

    platform(StatusRecorder()).train(score, dataset)

    published = s3.get_object(Bucket=BUCKET, Key=f"models/{score.path}/model.tar.gz")["Body"].read()
    assert published == archive
    assert real_aws.rules.refused == [
        "InvalidRequest: The specified copy source is larger than the maximum allowable size for a copy source: 5242880"
    ]  # only the test's own one-call copy


def test_a_training_job_whose_create_answer_was_lost_is_the_one_waited_for(real_aws, project: Path) -> None:
    """CreateTrainingJob takes no idempotency token: when the answer to a create that SageMaker performed is
    lost, botocore sends it again and SageMaker says ResourceInUse (the proxy keeps that rule: moto would create
    the job twice). That job is ours (the same request): it is waited for, not reported as a failure."""
    from tests.faults import Injector, LostAnswer, installed

    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"models/{score.path}/jobs/{JOB}/output/model.tar.gz", Body=b"m")
    injector = Injector([LostAnswer("sagemaker:CreateTrainingJob")])
    with installed(injector):
        result = platform(StatusRecorder()).train(score, dataset)
    assert injector.injected == {"lost answer": 1}
    assert [refusal.split(":")[0] for refusal in real_aws.rules.refused] == ["ResourceInUse"]
    assert result.location.endswith("/model.tar.gz")
    jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [job["TrainingJobName"] for job in jobs] == [JOB]


def test_a_different_job_of_the_same_name_is_an_error(real_aws, project: Path) -> None:
    publish_outputs()
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    chosen = platform(StatusRecorder())
    request = chosen.job_request(JOB, score, score.config)
    boto3.client("sagemaker").create_training_job(**{**request, "RoleArn": "arn:aws:iam::123456789012:role/other"})
    with pytest.raises(PlexusError, match="ResourceInUse: a different job of that name exists"):
        chosen._create_job(JOB, request)


def test_the_job_reports_its_best_macro_f1_as_a_metric_which_the_table_shows(sandbox, project: Path) -> None:
    """SageMaker reads metrics from the job's log with MetricDefinitions; the trainer's closing line carries the
    best epoch's macro-F1, which DescribeTrainingJob's FinalMetricDataList then holds."""
    import re

    from plexus_train.container.reporting import EpochResult
    from plexus_train.container.trainer import TrainedClassifier, _summary
    from plexus_train.platforms.sagemaker import F1_METRIC, best_f1

    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    chosen = SageMakerPlatform(Clients("us-east-1"), Outputs(BUCKET, ROLE), StatusRecorder(), verbose=True)
    request = chosen.job_request(JOB, score, score.config)
    (definition,) = [d for d in request["AlgorithmSpecification"]["MetricDefinitions"] if d["Name"] == F1_METRIC]
    assert definition["Name"] == F1_METRIC and json.loads(request["HyperParameters"]["plexus_verbose"]) is True
    epoch = EpochResult(3, 0.5, 0.4, 0.9, 0.8, 0.7, 0.765, 1e-4, 10, 1.0, 1.0, 0.8)
    line = _summary(TrainedClassifier(None, None, [], score.config, [epoch], best_epoch=1))
    assert re.search(definition["Regex"], line).group(1) == "0.765"
    assert best_f1({"FinalMetricDataList": [{"MetricName": F1_METRIC, "Value": 0.765}]}) == 0.765
    assert best_f1({}) is None


def test_a_verbose_job_logs_each_step(capsys: pytest.CaptureFixture[str]) -> None:
    from plexus_train.container.reporting import LogReporter

    quiet, verbose = LogReporter(), LogReporter(verbose=True)
    for reporter in (quiet, verbose):
        reporter.start(1, 2)
        reporter.batch(0.5, 1e-3)
    assert capsys.readouterr().out.count("epoch 1, step 1/2: loss 0.5000, lr 1.00e-03") == 1


def test_plexus_users_role_variable_and_the_profiles_region_are_honoured(
    sandbox, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEXUS_S3_BUCKET", BUCKET)
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", ROLE)
    assert training_outputs(boto3.client("ssm"), resolve_target("nowhere")) == Outputs(BUCKET, ROLE)
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-west-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert resolve_target("nowhere").region == "eu-west-2"
