"""Training as a SageMaker job in framework script mode, with boto3 only.

Steps: upload the data to training-data/{sc}/{s}/data.csv; package the container code (`container.bundle`, plus a
local base model, if the score names one) into training-code/{sc}/{s}/sourcedir.tar.gz; create the job (retrying while
a new role propagates through IAM); wait, showing status transitions and CloudWatch log lines; copy the job's
model.tar.gz (written under models/{sc}/{s}/jobs/, a prefix the training role may write) to
models/{sc}/{s}/model.tar.gz.

With `training.instance_type: local` the same request runs on this machine (`platforms.local_job`) instead of
CreateTrainingJob, and everything before and after it is the same. `--no-wait` stops after creating the job;
`attach` picks a job up again by its name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plexus_infra.core.aws import Clients, call, copy_object, role_not_assumable_yet, until_consistent, upload_file
from plexus_infra.core.errors import ApplyError, ObserveError, PlexusError
from plexus_infra.environments import TrainingOutputs
from plexus_train.container.bundle import TRAINING_ENTRY, copy_code
from plexus_train.container.config import TrainingConfig, is_local_dir, looks_like_path
from plexus_train.container.dataset import Dataset
from plexus_train.container.entrypoint import (
    BASE_MODEL_DIR,
    CHECKPOINTS_HP,
    PROCESSES_HP,
    SCORE_HP,
    SCORECARD_HP,
    VERBOSE_HP,
)
from plexus_train.images import image_uri
from plexus_train.locations import keys, keys_of_jobs, s3_uri, split_s3_uri
from plexus_train.names import sagemaker_name
from plexus_train.packaging import write_tarball
from plexus_train.platforms import TrainingResult
from plexus_train.platforms.local_job import LOCAL, LocalJob, check_capacity, visible_gpus
from plexus_train.scorecards import Score
from plexus_train.waiting import StatusReporter, Waiter, wait

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker reads metrics from the job's log lines with these regexes (at most 40 definitions, each a Name and a
# Regex: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricDefinition.html) and shows them in
# its console and CloudWatch. Each epoch line (`container.reporting.epoch_line`) gives the epoch's validation
# loss, accuracy and macro-F1; the closing summary (`container.trainer`) the best epoch's macro-F1, which
# DescribeTrainingJob's FinalMetricDataList then holds (its last value).
F1_METRIC = "validation:macro_f1"
METRIC_DEFINITIONS = [
    {"Name": F1_METRIC, "Regex": r"best epoch \d+: .*?macro F1 ([0-9.]+)"},
    {"Name": "epoch:validation_loss", "Regex": r"^epoch \d+: train loss [0-9.]+, validation loss ([0-9.]+),"},
    {"Name": "epoch:validation_accuracy", "Regex": r"^epoch \d+: train loss .*?, accuracy ([0-9.]+),"},
    {"Name": "epoch:validation_macro_f1", "Regex": r"^epoch \d+: train loss .*?, F1 ([0-9.]+),"},
]
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"  # CheckpointConfig.LocalPath, synced to its S3Uri
ROLE_PROPAGATION_TIMEOUT = 120.0
# Beyond the job's own MaxRuntimeInSeconds: time to get instances, download data and upload the model.
WAIT_MARGIN_SECONDS = 3600.0
TRAINING_JOB = Waiter(
    "the training job",
    status=lambda job: f"{job['TrainingJobStatus']} ({job.get('SecondaryStatus', '')})",
    terminal=("Completed", "Failed", "Stopped"),
    interval=15.0,
)


class TrainingJobFailed(PlexusError):
    """The job ended Failed or Stopped; the message carries SageMaker's FailureReason."""


def job_waiter(score: Score, waiter: Waiter = TRAINING_JOB) -> Waiter:
    """`waiter`, waiting at least as long as the job may run (max_runtime_seconds, or with spot the longer
    max_wait_seconds, which counts the wait for spot capacity) plus WAIT_MARGIN_SECONDS."""
    training = score.training
    longest = max(training.max_runtime_seconds, training.max_wait if training.spot else 0)
    return replace(waiter, timeout=max(waiter.timeout, longest + WAIT_MARGIN_SECONDS))


def attached_waiter(job: dict[str, Any], waiter: Waiter = TRAINING_JOB) -> Waiter:
    """`job_waiter` for a job known only by its DescribeTrainingJob answer (`plexus train --attach`)."""
    stopping = job.get("StoppingCondition") or {}
    longest = max(stopping.get("MaxRuntimeInSeconds", 0), stopping.get("MaxWaitTimeInSeconds", 0))
    return replace(waiter, timeout=max(waiter.timeout, longest + WAIT_MARGIN_SECONDS))


def time_line(job: dict[str, Any]) -> str | None:
    """The closing line's training vs billable seconds, when SageMaker gives them (managed spot bills less
    than it trains: the saving is 1 − billable / training)."""
    trained, billed = job.get("TrainingTimeInSeconds"), job.get("BillableTimeInSeconds")
    if not isinstance(trained, int):
        return None
    if not isinstance(billed, int):
        return f"training time {trained} s"
    spot = job.get("EnableManagedSpotTraining") and trained
    saving = f" (managed spot saved {100 * (1 - billed / trained):.0f}%)" if spot else ""
    return f"training time {trained} s, billable time {billed} s{saving}"


def build_sourcedir(score: Score, target: Path) -> tuple[Path, str]:
    """Write sourcedir.tar.gz: entry script, requirements.txt, the code and, for a local base model, the
    model itself. Returns the tarball and the embeddings_model value the container should use."""
    embeddings = score.config.embeddings_model
    if looks_like_path(embeddings) and not is_local_dir(embeddings):
        raise PlexusError(f"cannot load embeddings model {embeddings!r}: no such local model directory {embeddings}")
    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging)
        copy_code(root, TRAINING_ENTRY)
        if is_local_dir(embeddings):
            shutil.copytree(embeddings, root / BASE_MODEL_DIR)
            embeddings = BASE_MODEL_DIR
        write_tarball(root, target)
    return target, embeddings


def entry_hyperparameters(score: Score, config: TrainingConfig, verbose: bool) -> dict[str, str]:
    """What the packaged entry reads from SM_HPS (every value JSON-encoded, as SageMaker takes them): the training
    settings, the score's names, verbosity, processes per host and the program to run."""
    return {
        **config.to_hyperparameters(),
        SCORECARD_HP: json.dumps(score.scorecard_name),
        SCORE_HP: json.dumps(score.name),
        VERBOSE_HP: json.dumps(verbose),
        PROCESSES_HP: json.dumps(score.training.processes_per_host or 0),
        "sagemaker_program": json.dumps(TRAINING_ENTRY),
    }


def best_f1(job: dict[str, Any]) -> float | None:
    """The best epoch's validation macro-F1 a finished job reported (METRIC_DEFINITIONS), None when it did not."""
    metrics = {metric.get("MetricName"): metric.get("Value") for metric in job.get("FinalMetricDataList", [])}
    value = metrics.get(F1_METRIC)
    return float(value) if isinstance(value, int | float) else None


# What a retried CreateTrainingJob must find again when its first attempt's answer was lost.
SAME_JOB = (("AlgorithmSpecification", "TrainingImage"), ("RoleArn",), ("HyperParameters",), ("OutputDataConfig",))


def same_job(request: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether `job` (DescribeTrainingJob) is the one `request` asked for: image, role, hyperparameters, output."""

    def at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
        for part in path:
            document = (document or {}).get(part)
        return document

    return all(at(request, path) == at(job, path) for path in SAME_JOB)


@dataclass
class SageMakerPlatform:
    """+ clients: the environment's region
    + outputs: the environment's bucket and training role
    + reporter: receives the job's status transitions and log lines
    + cpus: this machine's CPUs, which bound local mode's processes
    """

    clients: Clients
    outputs: TrainingOutputs
    reporter: StatusReporter
    job_name: Callable[[Score], str] = lambda score: sagemaker_name(score.path, time.strftime("%Y%m%d-%H%M%S"))
    sleep: Callable[[float], None] = time.sleep
    waiter: Waiter = TRAINING_JOB
    verbose: bool = False
    cpus: int | None = field(default_factory=os.cpu_count)

    def train(self, score: Score, dataset: Dataset, wait: bool = True) -> TrainingResult:
        """Upload, create the job (or run it here, in local mode) and, unless `wait` is false, follow it to its
        end and publish its model."""
        training = score.training
        if training.instance_type == LOCAL:
            per_host = training.processes_per_host or max(1, visible_gpus())
            check_capacity(training.instance_count, per_host, self.cpus)
        name, request = self._prepare(score, dataset)
        if training.instance_type == LOCAL:
            return self._finish(LocalJob(self.clients.s3, self.reporter).run(request))
        self._create_job(name, request)
        if not wait:
            return TrainingResult("", job=name)
        return self._finish(self._wait(name, job_waiter(score, self.waiter)))

    def attach(self, name: str) -> TrainingResult:
        """Wait for the job `name` (created by `train(..., wait=False)`, or another run) as `train` does."""
        job = call(
            self.clients.sagemaker.describe_training_job,
            f"training job {name}",
            absent=("ValidationException", "ResourceNotFound"),
            TrainingJobName=name,
        )
        if job is None:
            raise PlexusError(f"no training job {name} in {self.clients.region} (sagemaker:DescribeTrainingJob)")
        if keys_of_jobs(job["OutputDataConfig"]["S3OutputPath"]) is None:
            raise PlexusError(f"training job {name} was not made by plexus train (its output is not under models/)")
        self.reporter.status(f"attached to training job {name}")
        return self._finish(self._wait(name, attached_waiter(job, self.waiter)))

    def _prepare(self, score: Score, dataset: Dataset) -> tuple[str, dict[str, Any]]:
        """Upload the data and the code; the job's name and its CreateTrainingJob request."""
        bucket = self.outputs.bucket
        s3 = self.clients.s3
        self.reporter.status(f"uploading {len(dataset.texts)} examples to {s3_uri(bucket, keys(score).data)}")
        call(
            s3.put_object,
            s3_uri(bucket, keys(score).data),
            error=ApplyError,
            Bucket=bucket,
            Key=keys(score).data,
            Body=dataset.to_csv(),
            ContentType="text/csv",
        )
        with tempfile.TemporaryDirectory() as staging:
            tarball, embeddings = build_sourcedir(score, Path(staging) / "sourcedir.tar.gz")
            self.reporter.status(f"uploading code to {s3_uri(bucket, keys(score).code)}")
            upload_file(s3, tarball, bucket, keys(score).code)
        config = replace(
            score.config,
            embeddings_model=embeddings,
            text_column=dataset.text_column,
            label_column=dataset.label_column,
        )
        name = self.job_name(score)
        return name, self.job_request(name, score, config)

    def _wait(self, name: str, waiter: Waiter) -> dict[str, Any]:
        return wait(waiter, lambda: self._describe(name), self.reporter.status, self._logs(name), self.sleep)

    def _finish(self, job: dict[str, Any]) -> TrainingResult:
        """A finished job: its failure as one error, else its model published, its checkpoints (needed only to
        resume it) removed and its training vs billable time said."""
        name = job["TrainingJobName"]
        if job["TrainingJobStatus"] != "Completed":
            reason = job.get("FailureReason") or "no reason given"
            raise TrainingJobFailed(f"training job {name} {job['TrainingJobStatus'].lower()}: {reason}")
        location = self._publish_model(job)
        self._remove_checkpoints(job)
        line = time_line(job)
        if line:
            self.reporter.status(line)
        return TrainingResult(location, best_f1(job), job=name)

    def job_request(self, name: str, score: Score, config: TrainingConfig) -> dict[str, Any]:
        """The CreateTrainingJob request (pure, apart from the image lookup)."""
        bucket, training = self.outputs.bucket, score.training
        hyperparameters = {
            **entry_hyperparameters(score, config, self.verbose),
            "sagemaker_submit_directory": json.dumps(s3_uri(bucket, keys(score).code)),
            "sagemaker_region": json.dumps(self.clients.region),
        }
        if training.instance_type == LOCAL:  # this machine's Python stands in for the image
            image = training.image_uri or LOCAL
        else:
            image = image_uri(
                training.image_uri, "training", training.framework_version, self.clients.region, training.instance_type
            )
        checkpointed = training.spot or training.instance_type == LOCAL
        if checkpointed:
            hyperparameters[CHECKPOINTS_HP] = json.dumps(True)
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            "RoleArn": self.outputs.role_arn,
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": s3_uri(bucket, keys(score).data),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": s3_uri(bucket, keys(score).jobs)},
            "ResourceConfig": {
                "InstanceType": training.instance_type,
                "InstanceCount": training.instance_count,
                "VolumeSizeInGB": training.volume_size_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
            "Tags": [{"Key": "plexus:score", "Value": score.path}],
        }
        if checkpointed:
            # SageMaker syncs LocalPath to S3Uri while the job runs and restores it into a restarted (spot) job:
            # https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html. Local mode does the same.
            request["CheckpointConfig"] = {
                "S3Uri": s3_uri(bucket, keys(score).checkpoints),
                "LocalPath": CHECKPOINT_LOCAL_PATH,
            }
        if training.spot:
            # https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html: MaxWaitTimeInSeconds
            # (the run plus the wait for spot capacity) must be at least MaxRuntimeInSeconds.
            request["EnableManagedSpotTraining"] = True
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = training.max_wait
        return request

    def _create_job(self, name: str, request: dict[str, Any]) -> None:
        """CreateTrainingJob, retried while a new role propagates. It takes no idempotency token: when an
        attempt's answer is lost and botocore sends it again, SageMaker says the name is in use (ResourceInUse);
        the job of that name is then ours if it is the one asked for, and is waited for instead."""
        self.reporter.status(f"creating training job {name}")
        sagemaker = self.clients.sagemaker

        def create() -> Any:
            return call(
                sagemaker.create_training_job,
                f"training job {name}",
                absent=("ResourceInUse",),
                error=ApplyError,
                **request,
            )

        created = until_consistent(
            create, codes=(), also=role_not_assumable_yet, timeout=ROLE_PROPAGATION_TIMEOUT, sleep=self.sleep
        )
        if created is None and not same_job(request, self._describe(name)):
            raise ApplyError(
                f"sagemaker:CreateTrainingJob training job {name}: ResourceInUse: a different job of that name "
                "exists; run again (job names carry the time they were made)"
            )

    def _describe(self, name: str) -> dict[str, Any]:
        return call(self.clients.sagemaker.describe_training_job, f"training job {name}", TrainingJobName=name)

    def _logs(self, name: str) -> Callable[[dict[str, Any]], None]:
        """A tick callback that prints the job's new CloudWatch log lines, each once, where there are any.

        Each tick reads every page from the newest timestamp seen so far; events at that very timestamp may
        come again, so their ids are remembered (only those: memory stays small on long jobs)."""
        state: dict[str, Any] = {"start": 0, "seen": set()}

        def tick(_: dict[str, Any]) -> None:
            page: dict[str, Any] = {}
            while True:
                more = {"nextToken": page["nextToken"]} if page.get("nextToken") else {}
                page = (
                    call(
                        self.clients.logs.filter_log_events,
                        f"logs of {name}",
                        absent=("ResourceNotFoundException",),
                        logGroupName=LOG_GROUP,
                        logStreamNamePrefix=f"{name}/",
                        startTime=state["start"],
                        **more,
                    )
                    or {}
                )
                for event in page.get("events", []):
                    # AWS filters by stream prefix already; moto ignores the prefix, so check it here too.
                    if event.get("logStreamName", f"{name}/").startswith(f"{name}/"):
                        self._log_event(event, state)
                if not page.get("nextToken"):
                    return

        return tick

    def _log_event(self, event: dict[str, Any], state: dict[str, Any]) -> None:
        if event["eventId"] in state["seen"]:
            return
        if event["timestamp"] > state["start"]:
            state["start"], state["seen"] = event["timestamp"], set()
        state["seen"].add(event["eventId"])
        self.reporter.log(event["message"].rstrip())

    def _publish_model(self, job: dict[str, Any]) -> str:
        """Copy the job's model.tar.gz to the canonical models/{sc}/{s}/model.tar.gz (the score's, from the job's
        output path models/{sc}/{s}/jobs)."""
        source = job["ModelArtifacts"]["S3ModelArtifacts"]
        source_bucket, source_key = split_s3_uri(source)
        s3, bucket = self.clients.s3, self.outputs.bucket
        if call(s3.head_object, source, absent=("404", "NoSuchKey"), Bucket=source_bucket, Key=source_key) is None:
            raise PlexusError(f"training job {job['TrainingJobName']} completed but its model {source} does not exist")
        published = keys_of_jobs(source_key)
        if published is None:
            raise PlexusError(f"training job {job['TrainingJobName']}'s model {source} is not under a score's models/")
        model_key = published.model
        target = s3_uri(bucket, model_key)
        copy_object(s3, (source_bucket, source_key), bucket, model_key)  # > 5 GB copies in parts
        self.reporter.status(f"model at {target}")
        return target

    def _remove_checkpoints(self, job: dict[str, Any]) -> None:
        """A completed job's checkpoints only served to resume it: delete them, so the score's next job starts
        afresh instead of resuming a finished run."""
        checkpoint = job.get("CheckpointConfig")
        if not checkpoint:
            return
        bucket, prefix = split_s3_uri(checkpoint["S3Uri"])
        s3, where = self.clients.s3, checkpoint["S3Uri"]
        listed = call(s3.list_objects_v2, where, error=ObserveError, Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
        stale = [{"Key": item["Key"]} for item in (listed or {}).get("Contents", [])]
        if stale:
            call(s3.delete_objects, where, error=ApplyError, Bucket=bucket, Delete={"Objects": stale, "Quiet": True})
