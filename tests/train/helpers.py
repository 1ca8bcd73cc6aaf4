"""Names the training tests share: the demo data and test scorecard, the environment's published outputs in the
sandbox, a recorder of status lines, and `plexus` in a subprocess. Fixtures live in conftest.py; test modules
import from here, never from each other."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT, run_cli

DEMO_DATA = ROOT / "datasources" / "support_tickets.csv"
# A project directory in the shapes Plexus writes (its README says which file is which).
PLEXUS_PROJECT = Path(__file__).resolve().parent / "fixtures" / "plexus-project"

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

BUCKET = "plexus-test-training"
ROLE = "arn:aws:iam::123456789012:role/plexus-test-sagemaker-training"


def make_project(directory: Path, model: Path) -> Path:
    """A working directory with one scorecard (whole-file layout) and the demo data as `tickets`."""
    (directory / "scorecards").mkdir(parents=True)
    (directory / "datasources").mkdir()
    (directory / "scorecards" / "test.yaml").write_text(SCORECARD.format(model=model), encoding="utf-8")
    shutil.copyfile(DEMO_DATA, directory / "datasources" / "tickets.csv")
    (directory / "datasources" / "tickets.yaml").write_text("path: tickets.csv\ntext_column: text\n", encoding="utf-8")
    return directory


def make_plexus_project(directory: Path, model: Path) -> Path:
    """A copy of the Plexus-shaped fixture project, with the tiny encoder at build/tiny-bert as its scores expect."""
    shutil.copytree(PLEXUS_PROJECT, directory, dirs_exist_ok=True)
    shutil.copytree(model, directory / "build" / "tiny-bert")
    return directory


def learning_rates(config: object) -> list[float]:
    """The learning rate of each optimizer step when `config` trains two texts five times over (8 training
    examples, so 8 / batch_size steps an epoch), as the optimizer really saw them."""
    import pytest
    import torch

    from plexus_train.container.trainer import train_classifier

    seen: list[float] = []
    step = torch.optim.AdamW.step

    def recording(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    texts = ["my invoice is wrong", "the parcel never arrived"] * 5
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", recording)
        train_classifier(texts, ["billing", "shipping"] * 5, config)
    return seen


def publish_outputs(env: str = "test") -> None:
    """What `plexus-infra apply` leaves behind: the bucket (no policy: moto refuses PutObject under a Deny)
    and the SSM outputs."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    ssm = boto3.client("ssm")
    values = {"training-bucket-name": BUCKET, "training-bucket-arn": f"arn:aws:s3:::{BUCKET}"}
    values["sagemaker-training-role-arn"] = ROLE
    for key, value in values.items():
        ssm.put_parameter(Name=f"/plexus/{env}/{key}", Value=value, Type="String")


class StatusRecorder:
    """A waiting.StatusReporter that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def status(self, text: str) -> None:
        self.lines.append(text)

    def log(self, line: str) -> None:
        self.lines.append(f"log: {line}")


class SplitClient:
    """A sagemaker client whose create_training_job is the real one (moto's) and everything else a stubbed one."""

    def __init__(self, stubbed, create):
        self._stubbed, self.create_training_job = stubbed, create

    def __getattr__(self, name):
        return getattr(self._stubbed, name)


def set_training(project: Path, **fields: object) -> None:
    """Add `fields` to the test score's training: block (make_project's scorecard)."""
    import json

    path = project / "scorecards" / "test.yaml"
    lines = "".join(f"      {name}: {json.dumps(value)}\n" for name, value in fields.items())
    path.write_text(path.read_text().replace("    training:\n", "    training:\n" + lines), encoding="utf-8")


def cli_env() -> dict[str, str]:
    """Subprocesses run from temporary directories: make sure they import this checkout."""
    return {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def plexus_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`plexus ARGS...` in a subprocess run from `cwd`, as a user would run it."""
    return run_cli(*args, module="plexus_train", cwd=cwd, env=cli_env())


@dataclass(frozen=True)
class Ran:
    """What one in-process `plexus` run gave (the `plexus` fixture): exit code, stdout, stderr."""

    code: int
    out: str
    err: str
