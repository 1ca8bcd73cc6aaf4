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

from plexus_infra.core.errors import ManifestError, PlexusError, Problem
from plexus_infra.core.yamldoc import YamlDocument, parse_yaml, read_text
from plexus_train.container.config import TrainingConfig
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
class _Unreadable:
    """A file under scorecards/ that could not be parsed (nor read): lookups pass it by unless it is the one asked
    for, and name it when what was asked for is not found elsewhere.

    + per_score: a per-score layout file, whose path names its score
    + name, key: its top-level `name` and `key`, when they come before the first problem (`_salvage`)
    """

    path: Path
    error: ManifestError
    per_score: bool
    name: str | None = None
    key: str | None = None

    def identity(self) -> tuple[str, str]:
        """(name, key) as a lookup matches them: the file's name defaults to its stem, as a scorecard's does and
        as the per-score layout's path names its score."""
        name = self.name if self.name is not None else self.path.stem
        return name, self.key or key_of(name)

    def matches(self, wanted: str) -> bool:
        """Whether this file is, by its salvaged name or key (or, in the per-score layout, by its path), what
        `wanted` asks for."""
        by_path = self.per_score and _matches(wanted, self.path.stem, key_of(self.path.stem))
        return by_path or _matches(wanted, *self.identity())

    def __str__(self) -> str:
        """`scorecards/x.yaml could not be read: line 3, column 5: <message>`: its first problem."""
        first = self.error.problems[0]
        where = f"line {first.line}, column {first.column or 1}: " if first.line is not None else ""
        what = f"{first.field}: " if first.field else ""
        return f"{self.path} could not be read: {where}{what}{first.message}"


@dataclass(frozen=True)
class _Candidate:
    """A scorecard found on disk: its name, key, where it is (`where`: its file, or its directory and `/` for the
    per-score layout), where each of its scores lives in which document, and its files that could not be read."""

    name: str
    key: str
    where: str
    scores: list[tuple[YamlDocument, tuple[str | int, ...]]]
    unreadable: list[_Unreadable] = field(default_factory=list)


def find_score(scorecard: str, score: str, root: Path = SCORECARDS_DIR) -> Score:
    """The score named (or keyed) `score` in the scorecard named (or keyed) `scorecard`, validated.

    Files that cannot be parsed, and files that parse but do not validate, stop a lookup only when they are
    what was asked for: the file holding the score found, or an unparsable file whose top-level name or key
    (when they come before its first problem), else its file name, is the one asked for; a per-score file's
    path (`scorecards/<Scorecard>/<Score>.yaml`) always names its score. Otherwise they are passed by, and
    named in the error when the scorecard or score is not found elsewhere.
    """
    cards, unreadable = _scorecards(root)
    card = _pick(scorecard, cards, unreadable, root)
    found = [
        (doc, path)
        for doc, path in card.scores
        if isinstance(_at(doc, path), dict)
        and _matches(score, str(_at(doc, path).get("name", "")), _score_key(_at(doc, path)))
    ]
    broken = [b for b in card.unreadable if b.matches(score)]
    if len(found) + len(broken) > 1:
        places = ", ".join([*(_place(doc, path) for doc, path in found), *(str(b.path) for b in broken)])
        raise PlexusError(
            f"scorecard {card.name!r} has {len(found) + len(broken)} scores matching {score!r}: {places}; give its key"
        )
    # An unparsable file that is, by its name or its path, the score asked for?
    if broken:
        raise broken[0].error
    if not found:
        names = sorted(str(_at(doc, path).get("name")) for doc, path in card.scores if isinstance(_at(doc, path), dict))
        raise PlexusError(
            f"scorecard {card.name!r} has no score {score!r}; it has: {', '.join(names) or 'none'}"
            + _also(card.unreadable)
        )
    doc, path = found[0]
    if doc.problems:  # loading went on past them (duplicate keys, …) to find names; the score asked for has them
        raise ManifestError(list(doc.problems))
    check(doc, "scorecard" if path else "score")
    return _score(card, doc, path)


def _scorecards(root: Path) -> tuple[list[_Candidate], list[_Unreadable]]:
    """Every scorecard under `root`, and every file there that could not be parsed (a per-score file's is also
    listed on its directory's scorecard)."""
    if not root.is_dir():
        raise PlexusError(f"no {root}/ directory here; run plexus from the project directory")
    cards: list[_Candidate] = []
    unreadable: list[_Unreadable] = []
    for path in sorted(root.glob("*.y*ml")):
        doc = _load(path, "scorecard", per_score=False)
        if isinstance(doc, _Unreadable):
            unreadable.append(doc)
            continue
        data = doc.data if isinstance(doc.data, dict) else {}
        name = str(data.get("name", path.stem))
        scores = data.get("scores") if isinstance(data.get("scores"), list) else []
        places = [(doc, ("scores", i)) for i in range(len(scores))]
        cards.append(_Candidate(name, str(data.get("key") or key_of(name)), str(path), places))
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        loaded = [_load(path, "score", per_score=True) for path in sorted(directory.glob("*.y*ml"))]
        docs = [(doc, ()) for doc in loaded if isinstance(doc, YamlDocument)]
        broken = [doc for doc in loaded if isinstance(doc, _Unreadable)]
        unreadable += broken
        cards.append(_Candidate(directory.name, key_of(directory.name), f"{directory}/", docs, broken))
    return cards, unreadable


def _load(path: Path, what: str, *, per_score: bool) -> YamlDocument | _Unreadable:
    """The document, with the problems that did not stop parsing (duplicate keys, …) kept for later, so that
    a file's names can still be read; or why it could not be parsed, with what of its identity comes first."""
    try:
        text = read_text(path, what=what)
    except ManifestError as error:
        return _Unreadable(path, error, per_score)
    try:
        return parse_yaml(text, str(path), strict=False)
    except ManifestError as error:
        return _Unreadable(path, error, per_score, *_salvage(text))


SALVAGE_EVENTS = 10_000  # name and key come first in a scorecard or score; never scan a huge file to its end


def _salvage(text: str) -> tuple[str | None, str | None]:
    """The top-level `name` and `key` scalars of a YAML text that does not parse, read from its events up to the
    first error (or SALVAGE_EVENTS): (None, None) when they are not there before it.

    Example: `_salvage("name: Demo\nscores: [1, {") == ("Demo", None)`
    """
    import yaml

    found: dict[str, str] = {}
    depth, at_key, key = 0, True, None
    try:
        for count, event in enumerate(yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))):
            if count > SALVAGE_EVENTS or len(found) == 2:
                break
            if isinstance(event, yaml.CollectionStartEvent):
                if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                    break  # not a mapping: no name to find
                if depth == 1:
                    at_key, key = not at_key, None
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                if depth == 0:
                    break
            elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent) and depth == 1:
                value = event.value if isinstance(event, yaml.ScalarEvent) else None
                if at_key:
                    key = value
                elif key in ("name", "key") and value is not None:
                    found.setdefault(key, value)
                at_key = not at_key
    except yaml.YAMLError:
        pass  # the error the loader reported: what came before it is all there is
    return found.get("name"), found.get("key")


def _pick(wanted: str, cards: list[_Candidate], unreadable: list[_Unreadable], root: Path) -> _Candidate:
    matching = [c for c in cards if _matches(wanted, c.name, c.key)]
    # Unparsable whole-scorecard files that are, by their salvaged name or key or their file name, the one asked for
    broken = [b for b in unreadable if not b.per_score and b.matches(wanted)]
    if len(matching) + len(broken) > 1:
        places = ", ".join([*(c.where for c in matching), *(str(b.path) for b in broken)])
        raise PlexusError(
            f"{len(matching) + len(broken)} scorecards under {root}/ match {wanted!r}: {places}; rename or key one"
        )
    if broken:
        raise broken[0].error
    if matching:
        return matching[0]
    available = ", ".join(sorted(c.name for c in cards)) or "none"
    raise PlexusError(f"no scorecard {wanted!r} under {root}/; found: {available}" + _also(unreadable))


def _also(unreadable: list[_Unreadable]) -> str:
    """` (x.yaml could not be read: ...; y.yaml ...)`: files that might have held what was not found."""
    return f" ({'; '.join(map(str, unreadable))})" if unreadable else ""


def _place(doc: YamlDocument, path: tuple[str | int, ...]) -> str:
    """Where a score is: its file, and the line for a whole-scorecard file (which holds several)."""
    line = doc.locate(path)[0] if path else None
    return f"{doc.file}:{line}" if line is not None else doc.file


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
