"""Saving and reloading a trained classifier as a self-contained directory.

Layout (also the content of SageMaker's model.tar.gz):
  model.pt               state dict of encoder + head (all weights, fine-tuned or not)
  config.json            labels, base model, hyperparameters, best metrics
  training_history.json  per-epoch loss, accuracy, macro precision/recall/F1, learning rate
  encoder/               encoder configuration and tokenizer: enough to rebuild the model offline
  code/                  inference.py + requirements.txt + the plexus_train package (SageMaker serving)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from plexus_train.classifiers.config import TrainingConfig
from plexus_train.classifiers.model import BERTClassifier
from plexus_train.classifiers.trainer import TrainedClassifier
from plexus_train.packaging import INFERENCE_ENTRY, copy_code

FORMAT_VERSION = 1
WEIGHTS = "model.pt"
CONFIG = "config.json"
HISTORY = "training_history.json"
ENCODER = "encoder"
CODE = "code"


def save_classifier(trained: TrainedClassifier, directory: Path, identity: dict[str, str]) -> Path:
    """Write the artifacts of `trained` into `directory`; `identity` names the scorecard and score."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), directory / WEIGHTS)
    trained.tokenizer.save_pretrained(directory / ENCODER)
    trained.model.encoder.config.save_pretrained(directory / ENCODER)
    config = {
        "format_version": FORMAT_VERSION,
        "class": "BERTClassifier",
        **identity,
        "labels": trained.labels,
        "base_model": trained.config.embeddings_model,
        "hyperparameters": asdict(trained.config),
        "best_epoch": trained.best_epoch,
        "stopped_early": trained.stopped_early,
        "metrics": trained.best.as_dict(),
    }
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    history = [epoch.as_dict() for epoch in trained.history]
    (directory / HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    copy_code(directory / CODE, INFERENCE_ENTRY)
    return directory


@dataclass
class LoadedClassifier:
    """A reloaded model ready for inference."""

    model: BERTClassifier
    tokenizer: Any
    labels: list[str]
    config: TrainingConfig
    metadata: dict[str, Any]


def load_classifier(directory: Path) -> LoadedClassifier:
    """Rebuild the model from `directory` without any network access."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from plexus_infra.errors import PlexusError

    config_path = directory / CONFIG
    if not config_path.is_file():
        raise PlexusError(f"{directory}: no trained model here ({CONFIG} is missing); run `plexus train` first")
    metadata = json.loads(config_path.read_text(encoding="utf-8"))
    if metadata.get("format_version") != FORMAT_VERSION:
        raise PlexusError(f"{config_path}: unsupported format_version {metadata.get('format_version')!r}")
    hyperparameters = TrainingConfig(**metadata["hyperparameters"])
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(directory / ENCODER))
    model = BERTClassifier(encoder, len(metadata["labels"]), hyperparameters.dropout)
    model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(directory / ENCODER)
    return LoadedClassifier(model, tokenizer, metadata["labels"], hyperparameters, metadata)
