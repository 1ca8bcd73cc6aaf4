"""The hyperparameters of one training run, with their defaults in one place.

The same values travel as SageMaker hyperparameters (every value a JSON-encoded string, as the framework
containers expect), so conversion both ways lives here too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_train.container.windows import Windowing

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_path(name: str) -> bool:
    """Whether `name` can only mean a local directory: absolute, starting with `.` or `~`, a backslash, more
    than one `/`, or a first segment that is a local directory (`build/tiny-bert` when build/ exists) — a
    Hugging Face id is `name` or `owner/name`."""
    first = name.split("/", 1)[0]
    return (
        name.startswith(("/", ".", "~", "build/", "models/"))
        or "\\" in name
        or not HUB_ID.fullmatch(name)
        or ("/" in name and is_local_dir(first))
    )


def is_local_dir(name: str) -> bool:
    try:
        return Path(name).is_dir()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        return False


SCHEDULES = ("linear", "plateau")


@dataclass(frozen=True)
class TrainingConfig:
    """How to build and train a BERTClassifier.

    + embeddings_model: Hugging Face id or local directory of the encoder and its tokenizer
    + trainable_layers: how many of the encoder's last layers are fine-tuned (all of them also unfreezes
      the embeddings); the rest stay frozen
    + validation_fraction: share of each class held out for validation (stratified, fixed seed)
    + early_stopping_patience: epochs without a better validation macro-F1 (ties: a lower validation loss)
      before training stops; the best epoch by the same rule is the one kept
    + learning_rate: the encoder's rate after warmup: the peak of the `linear` schedule, the plateau of the
      `plateau` one; 1e-4 by default, as only the top layers train (the usual 2e-5 suits a whole encoder: with
      MiniLM's top 3 layers it left Rotten Tomatoes below a bag of words, docs/training.md)
    + head_learning_rate: the classification head's rate at the same point of the same schedule: a fresh linear
      head learns slowly at a pretrained encoder's 2e-5, so it gets its own, higher rate
    + schedule: `linear` (warm up over `warmup_ratio` of the steps, then fall linearly to zero) or `plateau`
      (Plexus's: from `warmup_learning_rate` up to `learning_rate` over `warmup_epochs`, held for
      `plateau_epochs`, then times `learning_rate_decay` per epoch; `learning_rate_at`)
    + max_tokens, max_windows, start_from_end, window_pooling: how texts become windows (`windows.Windowing`)
    + attention_dropout: the dropout of the encoder's attention probabilities while fine-tuning, in place of the
      model's own (0.1 for most): 0 by default, as it doubles the time of a CPU training step (PyTorch's fused
      attention takes no dropout there) for little regularisation the head's dropout does not already give
    + frozen_cache_megabytes: memory for the frozen layers' outputs, computed once per text and reused every epoch
      (`frozen`); 0 runs the whole encoder every pass
    + precision: the dtype of training's matrix products (`precision`): `auto` is bfloat16 autocast where the
      hardware multiplies it natively (a CPU with AMX, an Ampere or later GPU), else float32
    + onnx_inference: also save the model as an ONNX graph that predictions run with onnxruntime, without
      importing torch or transformers (`portable`): a first prediction starts ~7 s sooner, for an artifact that
      holds the encoder's weights twice
    """

    embeddings_model: str = "distilbert-base-uncased"
    trainable_layers: int = 2
    epochs: int = 3
    batch_size: int = 16
    max_tokens: int = 256
    dropout: float = 0.3
    attention_dropout: float = 0.0
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    early_stopping_patience: int = 2
    validation_fraction: float = 0.2
    seed: int = 42
    text_column: str = "text"
    label_column: str = "label"
    schedule: str = "linear"
    warmup_learning_rate: float = 0.0
    warmup_epochs: int = 0
    plateau_epochs: int = 0
    learning_rate_decay: float = 0.95
    max_windows: int = 1
    start_from_end: bool = False
    window_pooling: str = "max"
    frozen_cache_megabytes: int = 2048
    onnx_inference: bool = True
    precision: str = "auto"

    @property
    def windowing(self) -> Windowing:
        return Windowing(self.max_tokens, self.max_windows, self.start_from_end, self.window_pooling)

    def to_hyperparameters(self) -> dict[str, str]:
        """SageMaker's HyperParameters map: str → JSON-encoded str."""
        return {field.name: json.dumps(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_hyperparameters(cls, values: dict[str, Any]) -> TrainingConfig:
        """Read back `to_hyperparameters` (or SM_HPS, whose values the container already decoded); keys that
        are not fields (sagemaker_program, ...) are ignored."""
        kwargs: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in values:
                kwargs[field.name] = _coerce(values[field.name], type(getattr(cls(), field.name)))
        return cls(**kwargs)


def _coerce(value: Any, kind: type) -> Any:
    """A hyperparameter arrives decoded (SM_HPS) or JSON-encoded (HyperParameters); make it `kind`."""
    encoded = isinstance(value, str) and (kind is not str or value.startswith('"'))
    return kind(json.loads(value) if encoded else value)
