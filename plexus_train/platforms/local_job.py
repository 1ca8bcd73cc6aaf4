"""Local mode (`training.instance_type: local`): a CreateTrainingJob request run on this machine, as SageMaker's
training containers run it, without Docker.

For each host (`ResourceConfig.InstanceCount`, named algo-1, algo-2, ... as SageMaker names them) a temporary
root laid out like the container's /opt/ml is filled from S3, as SageMaker fills it:

  input/data/train/                the `train` channel, downloaded from its S3Uri (FullyReplicated: every host)
  input/config/hyperparameters.json, resourceconfig.json, inputdataconfig.json
  code/                            sourcedir.tar.gz (`sagemaker_submit_directory`), extracted
  model/, output/data/, checkpoints/   (checkpoints/ restored from CheckpointConfig.S3Uri)

The entry (`sagemaker_program`) then runs in a fresh process per host with the variables SageMaker's training
toolkit sets (https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md), this
machine's Python standing in for the image's. checkpoints/ is synced to CheckpointConfig.S3Uri while it runs, as
SageMaker syncs /opt/ml/checkpoints; at the end algo-1's model/ becomes `{S3OutputPath}/{job}/output/model.tar.gz`
and `output/failure` the FailureReason, so the caller goes on exactly as after a real job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from plexus_infra.core.aws import call, upload_file
from plexus_infra.core.errors import PlexusError
from plexus_train.container.distributed import MASTER_ADDR_ENV, MASTER_PORT_ENV
from plexus_train.locations import split_s3_uri
from plexus_train.packaging import write_tarball
from plexus_train.waiting import StatusReporter

LOCAL = "local"
CHANNEL = "train"
NETWORK_INTERFACE = "eth0"
SYNC_INTERVAL = 1.0


def host_names(count: int) -> list[str]:
    """SageMaker's host names. Example: `host_names(2) == ["algo-1", "algo-2"]`"""
    return [f"algo-{i}" for i in range(1, count + 1)]


def decoded_hyperparameters(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    """SM_HPS as the toolkit makes it: every value JSON-decoded where it is JSON, else kept as the string."""
    decoded: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        try:
            decoded[name] = json.loads(value)
        except ValueError:
            decoded[name] = value
    return decoded


def resource_config(host: str, hosts: list[str]) -> dict[str, Any]:
    """input/config/resourceconfig.json (and SM_RESOURCE_CONFIG)."""
    return {"current_host": host, "hosts": hosts, "network_interface_name": NETWORK_INTERFACE}


def input_data_config(request: Mapping[str, Any]) -> dict[str, Any]:
    """input/config/inputdataconfig.json (and SM_INPUT_DATA_CONFIG): per channel, its content type and mode."""
    config = {}
    for channel in request["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        config[channel["ChannelName"]] = {
            "ContentType": channel.get("ContentType", ""),
            "TrainingInputMode": request["AlgorithmSpecification"]["TrainingInputMode"],
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    return config


def container_environment(
    request: Mapping[str, Any], root: Path, host: str, hosts: list[str], cpus: int, gpus: int
) -> dict[str, str]:
    """The SM_* variables the training toolkit sets in the container of `host`, with `root` for /opt/ml (pure)."""
    hyperparameters = decoded_hyperparameters(request["HyperParameters"])
    channels = [channel["ChannelName"] for channel in request["InputDataConfig"]]
    environ = {
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NETWORK_INTERFACE_NAME": NETWORK_INTERFACE,
        "SM_NUM_CPUS": str(cpus),
        "SM_NUM_GPUS": str(gpus),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_CHANNELS": json.dumps(channels),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(root / "output" / "intermediate"),
        "SM_MODULE_DIR": hyperparameters.get("sagemaker_submit_directory", ""),
        "SM_USER_ENTRY_POINT": hyperparameters.get("sagemaker_program", ""),
        "SM_RESOURCE_CONFIG": json.dumps(resource_config(host, hosts)),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config(request)),
        "SM_CURRENT_INSTANCE_TYPE": request["ResourceConfig"]["InstanceType"],
    }
    for channel in channels:
        environ[f"SM_CHANNEL_{channel.upper()}"] = str(root / "input" / "data" / channel)
    for name, value in hyperparameters.items():
        environ[f"SM_HP_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return environ


def check_capacity(hosts: int, processes_per_host: int, cpus: int | None) -> None:
    """Local mode runs every host's processes on this machine: refuse more of them than it has CPUs."""
    total = hosts * processes_per_host
    if cpus is not None and total > cpus:
        raise PlexusError(
            f"local mode would run training.instance_count {hosts} × {processes_per_host} processes per host = "
            f"{total} training processes on this machine, which has {cpus} CPUs; lower training.instance_count "
            "(or training.processes_per_host)"
        )


def visible_gpus(environ: Mapping[str, str] = os.environ, devices: str = "/dev") -> int:
    """The GPUs this machine hands the local hosts (SM_NUM_GPUS): CUDA_VISIBLE_DEVICES when set, else the NVIDIA
    device files, so the host side needs no torch import."""
    chosen = environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return len([device for device in chosen.split(",") if device.strip() and device.strip() != "-1"])
    return len([path for path in Path(devices).glob("nvidia[0-9]*")])


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalHost:
    """One "host" of a local job: its name (algo-N) and its /opt/ml-like root."""

    name: str
    root: Path
    process: subprocess.Popen[str] | None = None
    reader: threading.Thread | None = None

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


@dataclass
class LocalJob:
    """+ s3: the environment's S3 client (the sandbox's, in the demo and the tests)
    + reporter: receives status lines and the entry's output, a line at a time
    + cpus: this machine's CPUs, for SM_NUM_CPUS and the capacity check
    """

    s3: Any
    reporter: StatusReporter
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    gpus: int = field(default_factory=visible_gpus)
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run the job `request` (CreateTrainingJob's parameters) here; a DescribeTrainingJob-like answer."""
        name = request["TrainingJobName"]
        hosts = host_names(request["ResourceConfig"]["InstanceCount"])
        self.reporter.status(
            f"local mode: training job {name} runs here, {len(hosts)} host(s) as processes of this machine; "
            f"this machine's Python {sys.version.split()[0]} ({sys.executable}) stands in for the image's"
        )
        started = self.clock()
        with tempfile.TemporaryDirectory(prefix=f"plexus-{name}-") as scratch:
            machines = [LocalHost(host, Path(scratch) / host) for host in hosts]
            for machine in machines:
                self._prepare(request, machine, hosts)
            status, reason = self.execute(request, machines)
            answer: dict[str, Any] = {
                "TrainingJobName": name,
                "TrainingJobStatus": status,
                "SecondaryStatus": status,
                "TrainingTimeInSeconds": round(self.clock() - started),
            }
            if request.get("CheckpointConfig"):
                answer["CheckpointConfig"] = dict(request["CheckpointConfig"])
            if status == "Completed":
                answer["ModelArtifacts"] = {"S3ModelArtifacts": self._upload_model(request, machines[0])}
            else:
                answer["FailureReason"] = reason
        return answer

    def execute(self, request: Mapping[str, Any], machines: list[LocalHost]) -> tuple[str, str]:
        """Run the prepared hosts' entries to their end (status, failure reason); nothing is left running."""
        try:
            return self._train(request, machines)
        finally:
            _stop(machines)
            self._sync_checkpoints(request, machines, {})

    def _prepare(self, request: Mapping[str, Any], machine: LocalHost, hosts: list[str]) -> None:
        """Fill the host's /opt/ml-like root from S3, as SageMaker fills the container's."""
        root = machine.root
        write_config(request, machine, hosts)
        for channel in request["InputDataConfig"]:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self._download_prefix(uri, root / "input" / "data" / channel["ChannelName"])
        code_uri = json.loads(request["HyperParameters"]["sagemaker_submit_directory"])
        with tempfile.TemporaryDirectory() as staging:
            tarball = self._download(code_uri, Path(staging) / "sourcedir.tar.gz")
            with tarfile.open(tarball) as archive:
                archive.extractall(machine.code, filter="data")
        checkpoint = request.get("CheckpointConfig")
        if checkpoint:
            self._download_prefix(checkpoint["S3Uri"], machine.checkpoints)

    def _download_prefix(self, uri: str, directory: Path) -> None:
        """Every object under the S3 prefix `uri` into `directory`, by its key relative to the prefix."""
        bucket, prefix = split_s3_uri(uri)
        directory.mkdir(parents=True, exist_ok=True)
        paginator = self.s3.get_paginator("list_objects_v2")
        where = f"s3://{bucket}/{prefix}"
        pages = call(lambda **kw: list(paginator.paginate(**kw)), where, Bucket=bucket, Prefix=prefix)
        for page in pages or []:
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/") or Path(item["Key"]).name
                self._download(f"s3://{bucket}/{item['Key']}", directory / relative)

    def _download(self, uri: str, target: Path) -> Path:
        bucket, key = split_s3_uri(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        call(self.s3.download_file, uri, Bucket=bucket, Key=key, Filename=str(target))
        return target

    def _train(self, request: Mapping[str, Any], machines: list[LocalHost]) -> tuple[str, str]:
        """Start every host's entry, stream their output, sync checkpoints; (status, failure reason)."""
        hosts = [machine.name for machine in machines]
        program = json.loads(request["HyperParameters"]["sagemaker_program"])
        port = str(free_port())
        processes = len(machines) * processes_per_host(request, self.gpus)
        for machine in machines:
            # Where the hosts reach the first one: SageMaker resolves algo-1 through the containers' /etc/hosts;
            # here every "host" is this machine, at a port free for this job.
            environ = {
                **os.environ,
                **container_environment(request, machine.root, machine.name, hosts, self.cpus, self.gpus),
                MASTER_ADDR_ENV: "127.0.0.1",
                MASTER_PORT_ENV: port,
            }
            environ.setdefault("OMP_NUM_THREADS", str(max(1, self.cpus // processes)))
            environ["PYTHONUNBUFFERED"] = "1"
            machine.process = subprocess.Popen(
                [sys.executable, str(machine.code / program)],
                cwd=machine.code,
                env=environ,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            prefix = f"[{machine.name}] " if len(machines) > 1 else ""
            machine.reader = threading.Thread(target=self._relay, args=(machine.process.stdout, prefix), daemon=True)
            machine.reader.start()
        deadline = self.clock() + request["StoppingCondition"]["MaxRuntimeInSeconds"]
        synced: dict[Path, tuple[float, int]] = {}
        while any(machine.process.poll() is None for machine in machines if machine.process):
            if self.clock() > deadline:
                return "Stopped", "MaxRuntimeExceeded: the job ran past StoppingCondition.MaxRuntimeInSeconds"
            if any(machine.process.returncode not in (None, 0) for machine in machines if machine.process):
                break  # one host failed: SageMaker stops the others, and so does local mode
            self._sync_checkpoints(request, machines, synced)
            time.sleep(0.2)
        for machine in machines:
            if machine.reader:
                machine.reader.join(timeout=60)
        failed = [machine for machine in machines if machine.process and machine.process.returncode not in (None, 0)]
        if not failed:
            return "Completed", ""
        return "Failed", failure_reason(failed[0].root, failed[0].process.returncode if failed[0].process else None)

    def _relay(self, stream: IO[str] | None, prefix: str) -> None:
        for line in stream or ():
            with self._lock:
                self.reporter.log(prefix + line.rstrip("\n"))

    def _sync_checkpoints(
        self, request: Mapping[str, Any], machines: list[LocalHost], synced: dict[Path, tuple[float, int]]
    ) -> None:
        """Upload new or changed files of each host's checkpoints/ to CheckpointConfig.S3Uri (SageMaker syncs
        /opt/ml/checkpoints the same way while the job runs)."""
        checkpoint = request.get("CheckpointConfig")
        if not checkpoint:
            return
        bucket, prefix = split_s3_uri(checkpoint["S3Uri"])
        for machine in machines:
            for path in sorted(machine.checkpoints.rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue  # a checkpoint being written (`container.checkpoints` writes .name.tmp, then renames)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # replaced between the listing and now
                if synced.get(path) == (stat.st_mtime, stat.st_size):
                    continue
                key = f"{prefix.rstrip('/')}/{path.relative_to(machine.checkpoints).as_posix()}"
                try:
                    upload_file(self.s3, path, bucket, key)
                except FileNotFoundError:
                    continue  # removed while uploading: the entry saved a newer checkpoint, the next pass takes it
                synced[path] = (stat.st_mtime, stat.st_size)

    def _upload_model(self, request: Mapping[str, Any], machine: LocalHost) -> str:
        """Tar the first host's model/ to {S3OutputPath}/{job}/output/model.tar.gz, as SageMaker does."""
        bucket, prefix = split_s3_uri(request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{request['TrainingJobName']}/output/model.tar.gz"
        with tempfile.TemporaryDirectory() as staging:
            tarball = write_tarball(machine.root / "model", Path(staging) / "model.tar.gz")
            upload_file(self.s3, tarball, bucket, key)
        return f"s3://{bucket}/{key}"


def write_config(request: Mapping[str, Any], machine: LocalHost, hosts: list[str]) -> None:
    """The root's directories and input/config/ files, as SageMaker writes them before the entry starts."""
    for part in ("input/config", "model", "output/data", "checkpoints", "code"):
        (machine.root / part).mkdir(parents=True, exist_ok=True)
    config = machine.root / "input" / "config"
    (config / "hyperparameters.json").write_text(json.dumps(request["HyperParameters"]), encoding="utf-8")
    resource = resource_config(machine.name, hosts)
    (config / "resourceconfig.json").write_text(json.dumps(resource), encoding="utf-8")
    (config / "inputdataconfig.json").write_text(json.dumps(input_data_config(request)), encoding="utf-8")


def processes_per_host(request: Mapping[str, Any], gpus: int) -> int:
    """The training processes each host runs, from the request's hyperparameters (container.distributed's rule:
    0 means one per GPU, else 1)."""
    value = decoded_hyperparameters(request["HyperParameters"]).get("plexus_processes_per_host", 0)
    return int(value) if isinstance(value, int) and value > 0 else max(1, gpus)


def failure_reason(root: Path, code: int | None) -> str:
    """The FailureReason SageMaker reports: AlgorithmError with output/failure's text, else the exit code."""
    failure = root / "output" / "failure"
    text = failure.read_text(encoding="utf-8").strip() if failure.is_file() else ""
    return f"AlgorithmError: {text or f'the training entry exited with code {code}'}"


def _stop(machines: list[LocalHost]) -> None:
    """Nothing is left running: terminate every host's entry still alive, then kill what ignores that."""
    alive = [machine.process for machine in machines if machine.process and machine.process.poll() is None]
    for process in alive:
        process.terminate()
    for process in alive:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
