"""Training on this machine: the artifacts land in models/{scorecard_key}/{score_key}/ (`locations.model_dir`).

One process trains in this one. More than one (`training.processes_per_host`, by default one per visible GPU)
train as a SageMaker host would: the packaged entry in an /opt/ml-like root of its own, launching torchrun
(`container.distributed`), so every GPU of the machine trains one model with DDP; the model is then copied here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from plexus_infra.core.errors import PlexusError
from plexus_train.container.dataset import Dataset
from plexus_train.locations import MODELS_DIR, model_dir
from plexus_train.platforms import TrainingResult
from plexus_train.scorecards import Score

if TYPE_CHECKING:
    from plexus_train.container.reporting import Reporter
    from plexus_train.waiting import StatusReporter


@dataclass
class LocalPlatform:
    """+ reporter: receives training progress (None: nothing is reported)
    + root: the models directory
    + lines: receives the output of training processes when several train (None: it is dropped)
    """

    reporter: Reporter | None = None
    root: Path = MODELS_DIR
    lines: StatusReporter | None = None

    def train(self, score: Score, dataset: Dataset) -> TrainingResult:
        from plexus_train.container.artifacts import save_classifier
        from plexus_train.platforms.local_job import visible_gpus

        processes = score.training.processes_per_host or max(1, visible_gpus())
        if processes > 1:
            return self._train_in_processes(score, dataset, processes)
        from plexus_train.container.trainer import train_classifier

        trained = train_classifier(dataset.texts, dataset.labels, score.config, self.reporter)
        identity = {"scorecard": score.scorecard_name, "score": score.name}
        directory = save_classifier(trained, model_dir(score, self.root), identity)
        return TrainingResult(str(directory), trained.best.f1)

    def _train_in_processes(self, score: Score, dataset: Dataset, processes: int) -> TrainingResult:
        """The packaged entry as one local host of `processes` training processes; its model copied here."""
        from plexus_train.container.artifacts import CONFIG
        from plexus_train.container.bundle import TRAINING_ENTRY, copy_code
        from plexus_train.container.entrypoint import DATA_FILE
        from plexus_train.platforms.local_job import LocalHost, LocalJob, check_capacity, visible_gpus, write_config
        from plexus_train.platforms.sagemaker import entry_hyperparameters

        check_capacity(1, processes, None if visible_gpus() else os.cpu_count())
        config = replace(score.config, text_column=dataset.text_column, label_column=dataset.label_column)
        request = {
            "TrainingJobName": "local",
            "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
            "HyperParameters": entry_hyperparameters(score, config, verbose=False),
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": ""}}}],
            "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": score.training.max_runtime_seconds},
        }
        with tempfile.TemporaryDirectory(prefix="plexus-local-") as scratch:
            host = LocalHost("algo-1", Path(scratch) / "algo-1")
            write_config(request, host, [host.name])
            copy_code(host.code, TRAINING_ENTRY)
            channel = host.root / "input" / "data" / "train"
            channel.mkdir(parents=True, exist_ok=True)
            (channel / DATA_FILE).write_bytes(dataset.to_csv())
            status, reason = LocalJob(None, self.lines or _Dropped()).execute(request, [host])
            if status != "Completed":
                raise PlexusError(f"training in {processes} processes {status.lower()}: {reason}")
            directory = model_dir(score, self.root)
            shutil.copytree(host.root / "model", directory, dirs_exist_ok=True)
        metrics = json.loads((directory / CONFIG).read_text(encoding="utf-8")).get("metrics", {})
        return TrainingResult(str(directory), metrics.get("f1"))


class _Dropped:
    """A StatusReporter that drops everything (library callers that gave none)."""

    def status(self, text: str) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def forget_local_model(score: Score, root: Path = MODELS_DIR) -> Path | None:
    """Remove what an earlier run left in the score's local model directory (`plexus train --fresh`), so nothing
    of it survives this run, even one that fails; the directory removed, or None when there was none."""
    directory = model_dir(score, root)
    if not directory.is_dir():
        return None
    shutil.rmtree(directory)
    return directory
