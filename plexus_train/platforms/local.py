"""Training in this process: the artifacts land in models/{scorecard_key}/{score_key}/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_train.dataset import Dataset
from plexus_train.platforms import TrainingResult
from plexus_train.scorecards import Score

MODELS_DIR = Path("models")


def model_dir(score: Score, root: Path = MODELS_DIR) -> Path:
    return root / score.scorecard_key / score.key


@dataclass
class LocalPlatform:
    """+ reporter: receives training progress (a classifiers.trainer.Reporter)
    + root: the models directory
    """

    reporter: Any = None
    root: Path = MODELS_DIR

    def train(self, score: Score, dataset: Dataset) -> TrainingResult:
        from plexus_train.classifiers.artifacts import save_classifier
        from plexus_train.classifiers.trainer import train_classifier

        trained = train_classifier(dataset.texts, dataset.labels, score.config, self.reporter)
        identity = {"scorecard": score.scorecard_name, "score": score.name}
        directory = save_classifier(trained, model_dir(score, self.root), identity)
        return TrainingResult(str(directory))
