"""Local mode end to end against the moto server: `training.instance_type: local` runs the training job's container
contract here (moto's CreateTrainingJob runs nothing), the job's model.tar.gz is served by `plexus serve` as
SageMaker's inference container serves it, and `plexus predict --endpoint-url` asks it. Also the refusals: more
local processes than CPUs, an archive without code/inference.py."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.train.helpers import BUCKET, cli_env, publish_outputs, set_training

SCORE = ("--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic")
PATH = "test-scorecard-v-1-0/ticket-topic"


@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the entry processes too: steadier on two shared cores


def keys(prefix: str = "") -> set[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


def model_config(key: str = f"models/{PATH}/model.tar.gz") -> dict:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return json.loads(archive.extractfile("config.json").read())


def test_local_mode_runs_the_job_contract_and_publishes_as_a_real_job(sandbox, project: Path, plexus) -> None:
    publish_outputs()
    ran = plexus("train", *SCORE, "--instance-type", "local", "--env", "test")

    assert ran.code == 0, ran.err
    assert "local mode: training job test-scorecard-v-1-0--ticket-topic-" in ran.out
    assert "this machine's Python" in ran.out and "stands in for the image's" in ran.out
    assert "epoch 2: train loss" in ran.out and "best epoch" in ran.out
    stored = keys()
    job_models = {key for key in stored if key.startswith(f"models/{PATH}/jobs/")}
    (job_model,) = job_models
    assert job_model.endswith("/output/model.tar.gz")
    assert {
        f"training-data/{PATH}/data.csv",
        f"training-code/{PATH}/sourcedir.tar.gz",
        f"models/{PATH}/model.tar.gz",
    } <= stored
    # The checkpoints served only to resume this job: a completed job's are removed.
    assert not keys(f"models/{PATH}/checkpoints/")
    config = model_config(job_model)
    assert config["world_size"] == 1 and config["labels"] == ["billing", "shipping", "technical"]
    assert model_config() == config


def test_the_job_sees_the_layout_and_variables_of_a_training_container(tmp_path: Path) -> None:
    from plexus_train.platforms.local_job import container_environment, decoded_hyperparameters, resource_config

    request = {
        "HyperParameters": {"epochs": "3", "sagemaker_program": '"train.py"', "plain": "text"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/k"}}}],
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 2},
    }
    environ = container_environment(request, tmp_path, "algo-2", ["algo-1", "algo-2"], cpus=2, gpus=0)
    assert json.loads(environ["SM_HPS"]) == {"epochs": 3, "sagemaker_program": "train.py", "plain": "text"}
    assert environ["SM_CHANNEL_TRAIN"] == str(tmp_path / "input" / "data" / "train")
    assert environ["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert environ["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "output" / "data")
    assert environ["SM_INPUT_CONFIG_DIR"] == str(tmp_path / "input" / "config")
    assert json.loads(environ["SM_HOSTS"]) == ["algo-1", "algo-2"] and environ["SM_CURRENT_HOST"] == "algo-2"
    assert (environ["SM_NUM_CPUS"], environ["SM_NUM_GPUS"]) == ("2", "0")
    assert json.loads(environ["SM_RESOURCE_CONFIG"]) == resource_config("algo-2", ["algo-1", "algo-2"])
    assert json.loads(environ["SM_RESOURCE_CONFIG"])["current_host"] == "algo-2"
    assert environ["SM_HP_EPOCHS"] == "3" and json.loads(environ["SM_CHANNELS"]) == ["train"]
    assert decoded_hyperparameters({"a": '"x"', "b": "true"}) == {"a": "x", "b": True}


PROBE = """\
import json, os, pathlib, sys

root = pathlib.Path(os.environ["SM_MODEL_DIR"]).parent
seen = {
    "environ": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "code" not in p.parts),
    "resourceconfig": json.loads((root / "input/config/resourceconfig.json").read_text()),
    "hyperparameters": json.loads((root / "input/config/hyperparameters.json").read_text()),
    "cwd": os.getcwd(),
}
(root / "model" / "seen.json").write_text(json.dumps(seen))
(root / "output" / "pid").write_text(str(os.getpid()))
if seen["hyperparameters"].get("hang") == '"yes"':
    import time

    time.sleep(300)
if seen["hyperparameters"].get("fail") == '"yes"':
    (root / "output" / "failure").write_text("the data has only one class")
    sys.exit(1)
"""


def probe_request(tmp_path: Path, fail: bool, hang: bool = False) -> dict:
    """A CreateTrainingJob request whose code is PROBE (it records what it sees), its data and code in the bucket."""
    from plexus_train.packaging import write_tarball

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text(PROBE, encoding="utf-8")
    s3 = boto3.client("s3")
    s3.upload_file(
        str(write_tarball(tmp_path / "code", tmp_path / "sourcedir.tar.gz")), BUCKET, "training-code/x/y.tgz"
    )
    s3.put_object(Bucket=BUCKET, Key="training-data/x/y/data.csv", Body=b"text,label\n")
    hyperparameters = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": f'"s3://{BUCKET}/training-code/x/y.tgz"',
    }
    return {
        "TrainingJobName": "probe",
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
        "HyperParameters": {
            **hyperparameters,
            **({"fail": '"yes"'} if fail else {}),
            **({"hang": '"yes"'} if hang else {}),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/training-data/x/y/data.csv"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/x/y/jobs"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_the_entry_runs_in_a_container_like_root_with_the_toolkits_variables(sandbox, tmp_path: Path) -> None:
    from plexus_train.platforms.local_job import LocalJob
    from tests.train.helpers import StatusRecorder

    publish_outputs()
    job = LocalJob(boto3.client("s3"), StatusRecorder()).run(probe_request(tmp_path, fail=False))

    assert job["TrainingJobStatus"] == "Completed"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/models/x/y/jobs/probe/output/model.tar.gz"
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key="models/x/y/jobs/probe/output/model.tar.gz")["Body"]
    with tarfile.open(fileobj=io.BytesIO(body.read())) as archive:
        seen = json.loads(archive.extractfile("seen.json").read())
    assert seen["files"] == [
        "input/config/hyperparameters.json",
        "input/config/inputdataconfig.json",
        "input/config/resourceconfig.json",
        "input/data/train/data.csv",
    ]
    assert seen["resourceconfig"] == {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    assert seen["hyperparameters"]["sagemaker_program"] == '"train.py"'  # as sent: JSON-encoded strings
    environ = seen["environ"]
    assert json.loads(environ["SM_HPS"])["sagemaker_program"] == "train.py"  # decoded, as the toolkit gives it
    assert environ["SM_CHANNEL_TRAIN"].endswith("/algo-1/input/data/train") and seen["cwd"].endswith("/algo-1/code")
    toolkit = ("SM_HOSTS", "SM_CURRENT_HOST", "SM_NUM_GPUS", "SM_NUM_CPUS", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR")
    assert {*toolkit, "SM_INPUT_CONFIG_DIR", "SM_RESOURCE_CONFIG", "SM_INPUT_DATA_CONFIG", "SM_CHANNELS"} <= set(
        environ
    )


def test_the_failure_file_becomes_the_jobs_failure_reason(sandbox, tmp_path: Path) -> None:
    from plexus_train.platforms.local_job import LocalJob
    from tests.train.helpers import StatusRecorder

    publish_outputs()
    job = LocalJob(boto3.client("s3"), StatusRecorder()).run(probe_request(tmp_path, fail=True))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: the data has only one class"
    assert "ModelArtifacts" not in job


def test_a_job_past_its_max_runtime_is_stopped_and_nothing_is_left_running(
    sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plexus_train.platforms import local_job
    from tests.train.helpers import StatusRecorder

    publish_outputs()
    request = probe_request(tmp_path, fail=False, hang=True)
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 3
    pids: list[int] = []
    real_stop = local_job._stop

    def stop(machines):  # note the entry's pid before local mode stops it
        pids.extend(machine.process.pid for machine in machines if machine.process)
        real_stop(machines)

    monkeypatch.setattr(local_job, "_stop", stop)
    answer = local_job.LocalJob(boto3.client("s3"), StatusRecorder()).run(request)
    assert answer["TrainingJobStatus"] == "Stopped" and answer["FailureReason"].startswith("MaxRuntimeExceeded")
    assert answer["TrainingTimeInSeconds"] < 60 and pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_more_local_processes_than_cpus_is_one_line_and_writes_nothing(sandbox, project: Path, plexus) -> None:
    publish_outputs()
    set_training(project, instance_type="local", instance_count=(os.cpu_count() or 1) + 1)
    ran = plexus("train", *SCORE, "--platform", "sagemaker", "--env", "test")
    assert ran.code == 1
    assert ran.err.startswith("error: local mode would run training.instance_count ") and ran.err.count("\n") == 1
    assert "CPUs" in ran.err
    assert keys() == set()


def test_two_local_hosts_train_one_model_with_ddp(sandbox, project: Path, plexus) -> None:
    """instance_count 2 in local mode: two "hosts" as two processes of this machine (gloo over 127.0.0.1), torchrun
    launched by the entry on each; rank 0 alone saves, and the model records its world size."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two local hosts need two CPUs")
    publish_outputs()
    set_training(project, instance_type="local", instance_count=2)
    ran = plexus("train", *SCORE, "--platform", "sagemaker", "--env", "test")
    assert ran.code == 0, ran.err + ran.out
    assert "[algo-1] distributed: 2 processes (2 hosts × 1), this is algo-1" in ran.out
    assert "[algo-2] distributed: 2 processes (2 hosts × 1), this is algo-2" in ran.out
    assert "[algo-1] epoch 2: train loss" in ran.out and "[algo-2] epoch" not in ran.out
    config = model_config()
    assert config["world_size"] == 2 and 0.0 <= config["metrics"]["f1"] <= 1.0


def test_local_mode_hands_the_hosts_the_visible_gpus(tmp_path: Path) -> None:
    from plexus_train.platforms.local_job import processes_per_host, visible_gpus

    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (tmp_path / name).touch()
    assert visible_gpus({}, str(tmp_path)) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, str(tmp_path)) == 1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, str(tmp_path)) == 0
    request = {"HyperParameters": {"plexus_processes_per_host": "0"}}
    assert (processes_per_host(request, 2), processes_per_host(request, 0)) == (2, 1)  # one per GPU, else 1
    assert processes_per_host({"HyperParameters": {"plexus_processes_per_host": "3"}}, 2) == 3


def test_platform_local_with_several_processes_per_host_trains_one_model_with_ddp(project: Path, plexus) -> None:
    """`--platform local` uses every GPU the same way (processes_per_host: one per GPU); here, two CPU processes."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two processes need two CPUs")
    set_training(project, processes_per_host=2)
    ran = plexus("train", *SCORE, "--platform", "local")
    assert ran.code == 0, ran.err + ran.out
    assert "distributed: 2 processes (1 hosts × 2), this is algo-1" in ran.out and "epoch 2: train loss" in ran.out
    config = json.loads((project / "models" / PATH / "config.json").read_text())
    assert config["world_size"] == 2 and (project / "models" / PATH / "code" / "inference.py").is_file()


def test_each_batch_is_shared_out_so_every_example_is_seen_once_per_epoch() -> None:
    from plexus_train.container.distributed import World, launch_plan, shard

    batch = list(range(7))
    shares = [shard(batch, World(rank, 3)) for rank in range(3)]
    assert sorted(itertools.chain(*shares)) == batch and shares[0] == [0, 3, 6]
    plan = launch_plan({"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-2", "SM_NUM_GPUS": "4"})
    assert (plan.node_rank, plan.per_host, plan.world_size, plan.master_addr, plan.master_port) == (
        1, 4, 8, "algo-1", 7777,
    )  # fmt: skip
    assert launch_plan({"SM_HOSTS": '["algo-1"]', "SM_NUM_GPUS": "0"}, processes_per_host=2).world_size == 2


def serve(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], str, str]:
    """`plexus serve ARGS` in a subprocess; it, the URL it listens on and the line saying so, once it does."""
    server = subprocess.Popen(
        [sys.executable, "-m", "plexus_train", "serve", *args, "--port", "0"],
        cwd=cwd,
        env={**os.environ, **cli_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stdout:
        if line.startswith("listening on "):
            return server, line.split()[2], line
    server.wait(timeout=60)
    raise AssertionError(f"plexus serve exited {server.returncode}: {server.stderr.read()}")


def test_the_jobs_model_serves_the_inference_contract_and_predict_asks_it(sandbox, project: Path, plexus) -> None:
    publish_outputs()
    assert plexus("train", *SCORE, "--instance-type", "local", "--env", "test").code == 0
    server, url, _ = serve(*SCORE, "--env", "test", cwd=project)
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
            assert ping.status == 200
        ran = plexus("predict", *SCORE, "--endpoint-url", url, "--text", "my invoice is wrong", "--json")
        assert ran.code == 0, ran.err
        (answer,) = json.loads(ran.out)
        assert answer["value"] in ("billing", "shipping", "technical") and set(answer["probabilities"]) == {
            "billing", "shipping", "technical",
        }  # fmt: skip
        request = urllib.request.Request(f"{url}/invocations", b"text", {"Content-Type": "text/csv"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 415
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped serving" in out and "Traceback" not in err


def test_the_server_runs_the_archives_own_code(sandbox, project: Path, plexus) -> None:
    publish_outputs()
    assert plexus("train", *SCORE, "--instance-type", "local", "--env", "test").code == 0
    archive = project / "model.tar.gz"
    boto3.client("s3").download_file(BUCKET, f"models/{PATH}/model.tar.gz", str(archive))
    server, url, listening = serve(*SCORE, "--env", "test", "--model", str(archive), cwd=project)
    # The archive's plexus_train, extracted as SageMaker extracts it, not this checkout's.
    code = Path(listening.rstrip().rsplit(" code from ", 1)[1])
    assert code.name == "code" and code.parent.parent.name.startswith("plexus-serve-")
    assert (code / "inference.py").is_file() and not code.is_relative_to(Path(__file__).resolve().parents[2])
    server.terminate()  # SIGTERM stops it as Ctrl-C does, and the server process with it
    _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/ping", timeout=5)


def test_serving_an_archive_without_code_inference_py_is_one_line(sandbox, project: Path, plexus, tmp_path) -> None:
    from plexus_train.packaging import write_tarball

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"weights")
    archive = write_tarball(tmp_path / "model", tmp_path / "model.tar.gz")
    publish_outputs()
    ran = plexus("serve", *SCORE, "--env", "test", "--model", str(archive), "--port", "0")
    assert ran.code == 1
    assert ran.err.startswith(f"error: {archive}: the archive has no code/inference.py") and ran.err.count("\n") == 1


def test_predict_says_when_the_server_cannot_be_reached(project: Path, plexus) -> None:
    from plexus_train.platforms.local_job import free_port

    url = f"http://127.0.0.1:{free_port()}"
    ran = plexus("predict", *SCORE, "--endpoint-url", url, "--text", "hello")
    assert ran.code == 1 and ran.err.count("\n") == 1
    assert ran.err.startswith(f"error: {url}/invocations: cannot connect")
