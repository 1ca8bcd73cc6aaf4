"""Fixtures for the training module: a tiny offline BERT, a project directory with a scorecard and data, and
one trained model shared by the tests that only read it. Nothing downloads: HF_HUB_OFFLINE is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
DEMO_DATA = ROOT / "datasources" / "support_tickets.csv"

SCORECARD = """\
name: Test Scorecard v 1.0
scores:
  - name: Ticket Topic
    class: BERTClassifier
    data: tickets
    label_column: topic
    embeddings_model: {model}
    embeddings_model_trainable_layers: 2
    number_of_epochs: 2
    batch_size: 32
    maximum_tokens_per_window: 32
    learning_rate: 0.001
    training:
      deployment_target: sagemaker_serverless
      image_uri: 111122223333.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6-cpu-py312
      inference_image_uri: 111122223333.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312
"""


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Two shared cores: one torch thread gives steadier timings."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plexus_train.tinymodel import build_tiny_bert, csv_texts, vocabulary

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", vocabulary(csv_texts(DEMO_DATA, "text")))


def make_project(directory: Path, model: Path) -> Path:
    """A working directory with one scorecard (whole-file layout) and the demo data as `tickets`."""
    (directory / "scorecards").mkdir(parents=True)
    (directory / "datasources").mkdir()
    (directory / "scorecards" / "test.yaml").write_text(SCORECARD.format(model=model), encoding="utf-8")
    shutil.copyfile(DEMO_DATA, directory / "datasources" / "tickets.csv")
    (directory / "datasources" / "tickets.yaml").write_text("path: tickets.csv\ntext_column: text\n", encoding="utf-8")
    return directory


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project directory, also the current directory."""
    make_project(tmp_path, tiny_model)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A project with Ticket Topic trained locally once: models/test-scorecard-v-1-0/ticket-topic/."""
    import torch

    from plexus_train import datasources
    from plexus_train.platforms.local import LocalPlatform
    from plexus_train.scorecards import find_score

    torch.set_num_threads(1)
    root = make_project(tmp_path_factory.mktemp("trained"), tiny_model)
    score = find_score("Test Scorecard v 1.0", "Ticket Topic", root / "scorecards")
    dataset = datasources.load(datasources.resolve("tickets", root / "datasources"), "text", "topic")
    LocalPlatform(root=root / "models").train(score, dataset)
    return root


def cli_env() -> dict[str, str]:
    """Subprocesses run from temporary directories: make sure they import this checkout."""
    return {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
