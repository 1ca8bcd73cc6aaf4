"""Checkpoints: each epoch's end is saved atomically and a run resumes from the newest one. Tested for real in local
mode: a run killed with SIGKILL mid-training, started again, resumes at the next epoch and ends with the same
metrics as an uninterrupted run of the same seed; a corrupt checkpoint is passed over with a warning."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest

from tests.train.helpers import BUCKET, cli_env, publish_outputs, set_training

SCORE = ("--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic")
PATH = "test-scorecard-v-1-0/ticket-topic"
CHECKPOINTS = f"models/{PATH}/checkpoints/"
TIMINGS = ("train_seconds", "seconds")
EPOCHS = 12


@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one thread: the same arithmetic in every run, and steadier


def stored_checkpoints() -> list[int]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=CHECKPOINTS).get("Contents", [])
    return sorted(int(m.group(1)) for item in listed if (m := re.search(r"checkpoint-(\d+)\.pt$", item["Key"])))


def trained_model() -> tuple[dict, list[dict]]:
    """config.json and training_history.json of the published model, without the timings."""
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"models/{PATH}/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        config = json.loads(archive.extractfile("config.json").read())
        history = json.loads(archive.extractfile("training_history.json").read())
    untimed = [{k: v for k, v in epoch.items() if k not in TIMINGS} for epoch in history]
    return {k: v for k, v in config["metrics"].items() if k not in TIMINGS} | {"best": config["best_epoch"]}, untimed


def test_a_killed_run_resumes_at_the_next_epoch_and_ends_as_an_uninterrupted_run(
    sandbox, project: Path, plexus
) -> None:
    publish_outputs()
    set_training(project, instance_type="local")
    (project / "scorecards" / "test.yaml").write_text(
        (project / "scorecards" / "test.yaml")
        .read_text()
        .replace("number_of_epochs: 2", f"number_of_epochs: {EPOCHS}\n    early_stop_patience: {EPOCHS}")
    )  # enough epochs that the kill lands mid-run however fast this machine trains
    train = ("train", *SCORE, "--platform", "sagemaker", "--env", "test")
    whole = plexus(*train)
    assert whole.code == 0, whole.err
    uninterrupted = trained_model()
    assert stored_checkpoints() == []  # a completed job's checkpoints are removed

    killed = subprocess.Popen(
        [sys.executable, "-m", "plexus_train", *train],
        cwd=project,
        env={**os.environ, **cli_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the job's entry process too
    )
    deadline = time.monotonic() + 300
    while not stored_checkpoints() or max(stored_checkpoints()) < 2:
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)  # as a spot interruption takes the instance: no clean-up runs
    killed.wait(timeout=30)
    reached = max(stored_checkpoints())
    assert 2 <= reached < EPOCHS

    resumed = plexus(*train)

    assert resumed.code == 0, resumed.err
    assert f"resuming from the checkpoint of epoch {reached}" in resumed.out
    assert f"epoch {reached + 1}: train loss" in resumed.out
    assert not any(f"│ epoch {epoch}: train loss" in resumed.out for epoch in range(1, reached + 1))
    assert trained_model() == uninterrupted
    print(f"killed after epoch {reached}; metrics {uninterrupted[0]} (uninterrupted) == {trained_model()[0]}")


def test_a_corrupt_checkpoint_is_passed_over_with_a_warning_and_training_starts_over(
    sandbox, project: Path, plexus
) -> None:
    publish_outputs()
    set_training(project, instance_type="local")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{CHECKPOINTS}checkpoint-1.pt", Body=b"not a checkpoint")
    ran = plexus("train", *SCORE, "--platform", "sagemaker", "--env", "test")
    assert ran.code == 0, ran.err
    warning = next(line for line in ran.out.splitlines() if "warning: checkpoint" in line)
    assert "checkpoint-1.pt cannot be read" in warning and warning.endswith("training starts over")
    assert "epoch 1: train loss" in ran.out and "resuming" not in ran.out


def test_checkpoints_are_written_atomically_and_only_the_newest_is_kept(tmp_path: Path) -> None:
    from plexus_train.container import checkpoints

    checkpoints.save(tmp_path, 1, {"fingerprint": "a"})
    checkpoints.save(tmp_path, 2, {"fingerprint": "a"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2.pt"]  # no temporary file left either
    assert checkpoints.load(tmp_path, "a")["epoch"] == 2


def test_a_checkpoint_of_another_run_is_passed_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from plexus_train.container import checkpoints

    first = checkpoints.fingerprint(["a", "b"], ["x", "y"], {"epochs": 3}, 1)
    assert first != checkpoints.fingerprint(["a", "b"], ["x", "y"], {"epochs": 3}, 2)  # another world size
    assert first != checkpoints.fingerprint(["a", "c"], ["x", "y"], {"epochs": 3}, 1)  # other data
    checkpoints.save(tmp_path, 1, {"fingerprint": first})
    assert checkpoints.load(tmp_path, "another run") is None
    assert "is from another run" in capsys.readouterr().err
