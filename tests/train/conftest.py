"""Fixtures for the training module: a tiny offline BERT, a project directory with a scorecard and data, one
trained model shared by the tests that only read it, and `plexus` run in-process. Nothing downloads:
HF_HUB_OFFLINE is set. The names tests share are in tests/train/helpers.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.train.helpers import DEMO_DATA, Ran, make_plexus_project, make_project

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Two shared cores: one torch thread gives steadier timings."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plexus_train.tinymodel import build_tiny_bert, csv_texts, vocabulary

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", vocabulary(csv_texts(DEMO_DATA, "text")))


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project directory, also the current directory."""
    make_project(tmp_path, tiny_model)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def plexus_project(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the Plexus-shaped project (tests/train/fixtures/plexus-project), the current directory."""
    make_plexus_project(tmp_path / "plexus-project", tiny_model)
    monkeypatch.chdir(tmp_path / "plexus-project")
    yield tmp_path / "plexus-project"


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
    # Trained an hour ago: S3 keeps LastModified in whole seconds, so an object a test puts "after training" must
    # not land in the same second as the artifacts (provisioning serves whichever is newer).
    an_hour_ago = time.time() - 3600
    for path in (root / "models").rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    return root


@pytest.fixture
def plexus(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """`plexus ARGS...` in-process (`plexus_train.cli.main`), in the current directory; what it printed before
    is dropped."""
    from plexus_train.cli import main

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run
