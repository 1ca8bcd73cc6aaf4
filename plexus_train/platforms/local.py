"""Training in this process: the artifacts land in models/{scorecard_key}/{score_key}/ (`locations.model_dir`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plexus_train.container.dataset import Dataset
from plexus_train.locations import MODELS_DIR, model_dir
from plexus_train.platforms import TrainingResult
from plexus_train.scorecards import Score

if TYPE_CHECKING:
    from plexus_train.container.reporting import Reporter


@dataclass
class LocalPlatform:
    """+ reporter: receives training progress (None: nothing is reported)
    + root: the models directory
    """

    reporter: Reporter | None = None
    root: Path = MODELS_DIR

    def train(self, score: Score, dataset: Dataset) -> TrainingResult:
        from plexus_train.container.artifacts import save_classifier
        from plexus_train.container.trainer import train_classifier

        trained = train_classifier(dataset.texts, dataset.labels, score.config, self.reporter)
        identity = {"scorecard": score.scorecard_name, "score": score.name}
        directory = save_classifier(trained, model_dir(score, self.root), identity)
        return TrainingResult(str(directory), trained.best.f1)


def forget_local_model(score: Score, root: Path = MODELS_DIR) -> Path | None:
    """Remove what an earlier run left in the score's local model directory (`plexus train --fresh`), so nothing
    of it survives this run, even one that fails; the directory removed, or None when there was none."""
    directory = model_dir(score, root)
    if not directory.is_dir():
        return None
    shutil.rmtree(directory)
    return directory
