"""Scorecards and scores from local YAML, in both Plexus layouts:

  scorecards/<anything>.yaml                   a whole scorecard: name, key, scores: [...]
  scorecards/<Scorecard Name>/<Score Name>.yaml  one score per file; the directory names the scorecard

Scorecards and scores are found by name or key. Keys follow Plexus's rule (see `key_of`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plexus_infra.errors import ManifestError, PlexusError, Problem
from plexus_infra.manifest.loader import YamlDocument, load_yaml
from plexus_train.classifiers.config import TrainingConfig
from plexus_train.schemas import check

SCORECARDS_DIR = Path("scorecards")
NON_WORD = re.compile(r"\W+")
MAX_KEY_BYTES = 200  # keys name directories and S3 key segments: stay well inside a file name's 255 bytes

# Score YAML field → TrainingConfig field, where the names differ (Plexus's YAML names are kept).
YAML_TO_CONFIG = {
    "embeddings_model": "embeddings_model",
    "embeddings_model_trainable_layers": "trainable_layers",
    "number_of_epochs": "epochs",
    "batch_size": "batch_size",
    "maximum_tokens_per_window": "max_tokens",
    "dropout": "dropout",
    "learning_rate": "learning_rate",
    "weight_decay": "weight_decay",
    "warmup_ratio": "warmup_ratio",
    "early_stopping_patience": "early_stopping_patience",
    "validation_fraction": "validation_fraction",
    "seed": "seed",
}


def key_of(name: str) -> str:
    """Plexus's key rule: lowercase, each run of non-word characters becomes '-', trimmed of '-'.

    Example: `key_of("A Test Scorecard v 1.0") == "a-test-scorecard-v-1-0"`
    """
    return NON_WORD.sub("-", name.lower()).strip("-")


@dataclass(frozen=True)
class Deployment:
    """Endpoint sizing: serverless memory (MB, 1024–6144 by 1024) and concurrency (1–200), or realtime
    instance type and count."""

    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    instance_type: str = "ml.m5.large"
    instance_count: int = 1


@dataclass(frozen=True)
class TrainingSettings:
    """Where the score trains and deploys; the SageMaker fields matter only for SageMaker."""

    platform: str = "local"
    deployment_target: str = "local"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 86_400
    image_uri: str | None = None
    inference_image_uri: str | None = None
    framework_version: str = "2.6"  # transformers 5 needs torch >= 2.6; AWS publishes 2.6 images for py312
    deployment: Deployment = field(default_factory=Deployment)


@dataclass(frozen=True)
class Score:
    """One score of one scorecard, with everything needed to train and deploy it."""

    scorecard_name: str
    scorecard_key: str
    name: str
    key: str
    source: str
    config: TrainingConfig
    training: TrainingSettings
    data: str | None = None
    text_column: str | None = None
    label_column: str | None = None

    @property
    def path(self) -> str:
        """`{scorecard_key}/{score_key}`: the suffix of every S3 key and local directory for this score."""
        return f"{self.scorecard_key}/{self.key}"

    def with_overrides(self, **changes: Any) -> Score:
        """Apply command-line overrides: TrainingConfig fields and `platform`; None means 'not given'."""
        given = {name: value for name, value in changes.items() if value is not None}
        platform = given.pop("platform", None)
        score = replace(self, config=replace(self.config, **given))
        return replace(score, training=replace(score.training, platform=platform)) if platform else score


@dataclass(frozen=True)
class _Candidate:
    """A scorecard found on disk: its name, key and where each of its scores lives in which document."""

    name: str
    key: str
    scores: list[tuple[YamlDocument, tuple[str | int, ...]]]


def find_score(scorecard: str, score: str, root: Path = SCORECARDS_DIR) -> Score:
    """The score named (or keyed) `score` in the scorecard named (or keyed) `scorecard`, validated."""
    cards = _scorecards(root)
    card = _pick([c for c in cards if _matches(scorecard, c.name, c.key)], cards, scorecard, root)
    found = [
        (doc, path)
        for doc, path in card.scores
        if isinstance(_at(doc, path), dict)
        and _matches(score, str(_at(doc, path).get("name", "")), _score_key(_at(doc, path)))
    ]
    if not found:
        names = sorted(str(_at(doc, path).get("name")) for doc, path in card.scores if isinstance(_at(doc, path), dict))
        raise PlexusError(f"scorecard {card.name!r} has no score {score!r}; it has: {', '.join(names) or 'none'}")
    if len(found) > 1:
        raise PlexusError(f"scorecard {card.name!r} has {len(found)} scores matching {score!r}; give its key")
    doc, path = found[0]
    check(doc, "scorecard" if path else "score")
    return _score(card, doc, path)


def _scorecards(root: Path) -> list[_Candidate]:
    if not root.is_dir():
        raise PlexusError(f"no {root}/ directory here; run plexus from the project directory")
    cards: list[_Candidate] = []
    for path in sorted(root.glob("*.y*ml")):
        doc = load_yaml(path, what="scorecard")
        data = doc.data if isinstance(doc.data, dict) else {}
        name = str(data.get("name", path.stem))
        scores = data.get("scores") if isinstance(data.get("scores"), list) else []
        places = [(doc, ("scores", i)) for i in range(len(scores))]
        cards.append(_Candidate(name, str(data.get("key") or key_of(name)), places))
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        docs = [load_yaml(path, what="score") for path in sorted(directory.glob("*.y*ml"))]
        cards.append(_Candidate(directory.name, key_of(directory.name), [(doc, ()) for doc in docs]))
    return cards


def _pick(matching: list[_Candidate], cards: list[_Candidate], wanted: str, root: Path) -> _Candidate:
    if len(matching) == 1:
        return matching[0]
    if not matching:
        available = ", ".join(sorted(c.name for c in cards)) or "none"
        raise PlexusError(f"no scorecard {wanted!r} under {root}/; found: {available}")
    raise PlexusError(
        f"{len(matching)} scorecards under {root}/ match {wanted!r}: " + ", ".join(c.name for c in matching)
    )


def _matches(wanted: str, name: str, key: str) -> bool:
    return wanted in (name, key) or key_of(wanted) == key


def _score_key(data: dict[str, Any]) -> str:
    return str(data.get("key") or key_of(str(data.get("name", ""))))


def _at(doc: YamlDocument, path: tuple[str | int, ...]) -> Any:
    value = doc.data
    for part in path:
        value = value[part]
    return value


def _score(card: _Candidate, doc: YamlDocument, path: tuple[str | int, ...]) -> Score:
    data = _at(doc, path)
    config = TrainingConfig(**{YAML_TO_CONFIG[k]: v for k, v in data.items() if k in YAML_TO_CONFIG})
    training = dict(data.get("training", {}))
    deployment = Deployment(**training.pop("deployment", {}))
    score = Score(
        scorecard_name=card.name,
        scorecard_key=card.key,
        name=data["name"],
        key=_score_key(data),
        source=doc.file,
        config=config,
        training=TrainingSettings(**training, deployment=deployment),
        data=data.get("data"),
        text_column=data.get("text_column"),
        label_column=data.get("label_column"),
    )
    if _bad_key(card.key):
        if path:  # a whole-scorecard file: its name gave the key
            problem = doc.problem(("name",), f"the scorecard's name gives {_bad_key(card.key)}; set key")
        else:  # the per-score layout: the directory's name gave the key
            folder = str(Path(doc.file).parent)
            problem = Problem(folder, None, None, "", f"the directory name gives {_bad_key(card.key)}; rename it")
        raise ManifestError([problem])
    if _bad_key(score.key):
        raise ManifestError([doc.problem((*path, "name"), f"the score's name gives {_bad_key(score.key)}; set key")])
    return score


def _bad_key(key: str) -> str | None:
    """What is wrong with a derived key (it names directories and S3 key segments), else None."""
    size = len(key.encode("utf-8"))
    if not key:
        return "an empty key"
    return f"a key of {size} bytes (the limit is {MAX_KEY_BYTES})" if size > MAX_KEY_BYTES else None
