"""The SageMaker container path, for real but without Docker: the packaged entry script runs from an extracted
sourcedir.tar.gz with the SM_* variables SageMaker sets, and the model it writes loads and predicts."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from plexus_train.platforms.sagemaker import build_sourcedir
from plexus_train.scorecards import find_score
from tests.train.conftest import DEMO_DATA


def test_packaged_entry_script_trains_a_loadable_model(project: Path, tmp_path_factory) -> None:
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    tarball, embeddings = build_sourcedir(score, tmp_path_factory.mktemp("upload") / "sourcedir.tar.gz")
    assert embeddings == "base_model"
    code = tmp_path_factory.mktemp("opt-ml-code")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        archive.extractall(code, filter="data")
    assert {"train.py", "requirements.txt", "plexus_train/entrypoint.py", "base_model/config.json"} <= set(names)
    assert "transformers" in (code / "requirements.txt").read_text()

    ml = tmp_path_factory.mktemp("opt-ml")
    channel = ml / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "data.csv").write_bytes(DEMO_DATA.read_bytes())
    hyperparameters = {
        **score.config.to_hyperparameters(),
        "embeddings_model": '"base_model"',
        "label_column": '"topic"',
    }
    hyperparameters["plexus_score"] = '"Ticket Topic"'
    environ = {
        "SM_HPS": json.dumps({key: json.loads(value) for key, value in hyperparameters.items()}),
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
        "SM_NUM_GPUS": "0",
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
    }
    # An isolated interpreter (-I ignores PYTHONPATH and the user site; the checkout is not on sys.path) run
    # from the code directory, as the container does: everything it imports comes from the tarball.
    probe = (
        "import runpy, sys; sys.path.insert(0, '.'); sys.argv = ['train.py']; "
        "runpy.run_path('train.py', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], cwd=code, env=environ, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 2:" in result.stdout

    from plexus_train import inference

    model_dir = ml / "model"
    assert (ml / "output" / "data" / "training_history.json").is_file()
    assert json.loads((model_dir / "config.json").read_text())["score"] == "Ticket Topic"
    model = inference.model_fn(str(model_dir))
    answer = inference.predict_fn(["my invoice is wrong"], model)[0]
    assert answer["value"] in {"billing", "shipping", "technical"}


def test_entry_script_reports_bad_data_as_the_failure_reason(tmp_path: Path) -> None:
    from plexus_train.entrypoint import main

    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "data.csv").write_text("text,label\nhello,a\nworld,a\n")
    environ = {
        "SM_HPS": "{}",
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
    }
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, environ):
        assert main() == 1
    assert "single class" in (tmp_path / "output" / "failure").read_text()
    assert not (tmp_path / "model").exists()
