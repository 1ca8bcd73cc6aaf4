"""Saving and reloading a trained classifier as a self-contained directory.

Layout (also the content of SageMaker's model.tar.gz):
  model.pt               state dict of encoder + head (all weights, fine-tuned or not)
  config.json            labels, base model, hyperparameters, best metrics
  training_history.json  per-epoch loss, accuracy, macro precision/recall/F1, learning rate
  encoder/               encoder configuration and tokenizer: enough to rebuild the model offline
  inference/             the same model for onnxruntime, without torch (`portable`; with `onnx_inference`)
  code/                  inference.py + requirements.txt + this package (SageMaker serving: `bundle`)

Reading config.json needs neither torch nor transformers (`read_metadata`): the portable form loads without them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_train.container.bundle import INFERENCE_ENTRY, copy_code
from plexus_train.container.config import TrainingConfig
from plexus_train.container.errors import ContainerError, damaged, first_line
from plexus_train.container.windows import pad_id

if TYPE_CHECKING:
    from plexus_train.container.model import BERTClassifier
    from plexus_train.container.trainer import TrainedClassifier
    from plexus_train.container.windows import WindowBatch

FORMAT_VERSION = 1
WEIGHTS = "model.pt"
CONFIG = "config.json"
HISTORY = "training_history.json"
ENCODER = "encoder"
CODE = "code"


def save_classifier(trained: TrainedClassifier, directory: Path, identity: dict[str, str]) -> Path:
    """Write the artifacts of `trained` into `directory`; `identity` names the scorecard and score. A portable form
    that cannot be written is a warning, not a failure: predictions then load torch. An earlier model's portable
    form goes first, whatever this one's setting: it would answer for the new weights."""
    import shutil

    import torch

    from plexus_train.container import portable

    shutil.rmtree(directory / portable.PORTABLE, ignore_errors=True)
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
        "world_size": trained.world_size,
        "trained_in": trained.trained_in,
        "metrics": trained.best.as_dict(),
    }
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    history = [epoch.as_dict() for epoch in trained.history]
    (directory / HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    copy_code(directory / CODE, INFERENCE_ENTRY)
    if trained.config.onnx_inference:
        try:
            portable.export(trained.model, trained.tokenizer, trained.config, directory)
        except portable.ExportFailed as exc:
            print(f"warning: {directory}: no ONNX form for predictions ({exc}); they will load torch", file=sys.stderr)
    return directory


@dataclass
class ModelMetadata:
    """What config.json says of a trained model: its labels, its training settings, and the whole file."""

    labels: list[str]
    config: TrainingConfig
    raw: dict[str, Any]


@dataclass
class LoadedClassifier:
    """A reloaded model ready for inference."""

    model: BERTClassifier
    tokenizer: Any
    labels: list[str]
    config: TrainingConfig
    metadata: dict[str, Any]
    prediction_precision: str = "float32"  # what `inference.load_model` was asked for

    @property
    def pad(self) -> int:
        return pad_id(self.tokenizer)

    def probabilities(self, batch: WindowBatch) -> list[list[float]]:
        """Per text of the batch, its class probabilities (no gradients), computed in `prediction_precision`."""
        import torch

        from plexus_train.container import precision

        device = self.model.head.weight.device
        with torch.no_grad(), precision.autocast(device, precision.resolve(self.prediction_precision, device)):
            return torch.softmax(self.model.logits(batch).float(), dim=-1).tolist()


def read_metadata(directory: Path) -> ModelMetadata:
    """config.json of the model in `directory`. A directory without it is "not trained"; one that cannot be read,
    or lacks the labels or usable hyperparameters, is one DamagedModel."""
    config_path = directory / CONFIG
    if not config_path.is_file():
        raise ContainerError(f"{directory}: no trained model here ({CONFIG} is missing); run `plexus train` first")

    try:
        metadata = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise damaged(directory, f"{CONFIG} is not readable JSON ({first_line(exc)})") from None
    if not isinstance(metadata, dict):
        raise damaged(directory, f"{CONFIG} is not a JSON object")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ContainerError(f"{config_path}: unsupported format_version {metadata.get('format_version')!r}")
    labels = metadata.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(label, str) for label in labels):
        raise damaged(directory, f"{CONFIG} has no list of label classes")
    try:
        hyperparameters = TrainingConfig(**metadata["hyperparameters"])
    except (KeyError, TypeError) as exc:
        raise damaged(directory, f"{CONFIG} has unusable hyperparameters ({first_line(exc)})") from None
    return ModelMetadata(labels, hyperparameters, metadata)


def load_classifier(directory: Path) -> LoadedClassifier:
    """Rebuild the torch model from `directory` without any network access (`read_metadata` first); a part that
    cannot be read is one DamagedModel naming the directory and the part."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from plexus_train.container.model import BERTClassifier, check_tokenizer

    read = read_metadata(directory)
    labels, hyperparameters = read.labels, read.config

    encoder_dir = directory / ENCODER
    if not encoder_dir.is_dir():
        raise damaged(directory, f"{ENCODER}/ is missing")
    try:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(encoder_dir))
        tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged(directory, f"{ENCODER}/ cannot be loaded ({first_line(exc)})") from None
    check_tokenizer(tokenizer, getattr(encoder.config, "vocab_size", None), f"{directory}: damaged model: {ENCODER}/")
    model = BERTClassifier(encoder, len(labels), hyperparameters.dropout, hyperparameters.window_pooling)
    try:
        state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise damaged(directory, f"{WEIGHTS} is missing") from None
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a corrupt file
        raise damaged(directory, f"{WEIGHTS} cannot be read ({first_line(exc)})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        problem = "do not match the labels and encoder in the rest of the model"
        raise damaged(directory, f"the weights in {WEIGHTS} {problem} ({first_line(exc)})") from None
    model.eval()
    return LoadedClassifier(model, tokenizer, labels, hyperparameters, read.raw)
