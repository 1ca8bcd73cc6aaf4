"""Scorecards and scores from local YAML, in the layouts Plexus writes:

  scorecards/<anything>.yaml                     a whole scorecard: name, key, ..., and its scores as a list
                                                 (`scores: [...]`), a mapping from name to score (Plexus's older
                                                 format) or nested in `sections: [{name, scores}]`
  scorecards/<Scorecard Name>/<Score Name>.yaml  one score per file (as the Plexus API writes them, spaces and
                                                 case kept); the directory names the scorecard

Scorecards and scores are found by name or key. Keys follow Plexus's rule (see `key_of`). Only the score asked
for is checked (and, in a whole-scorecard file, the file's own fields): its siblings, of any class, block nothing.
A score of a class this tool cannot train (a LangGraphScore, ...) is one line saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plexus_infra.core.errors import ManifestError, PlexusError, Problem
from plexus_infra.core.yamldoc import Path_, YamlDocument, parse_yaml, read_text
from plexus_train.container.config import TrainingConfig
from plexus_train.schemas import PLATEAU_SCHEDULE, canonical, check, in_scope

SCORECARDS_DIR = Path("scorecards")
NON_WORD = re.compile(r"\W+")
MAX_KEY_BYTES = 200  # keys name directories and S3 key segments: stay well inside a file name's 255 bytes
TRAINABLE = "BERTClassifier"

# Score YAML setting (its documented name; schemas.ALIASES maps the other spellings) → TrainingConfig field.
YAML_TO_CONFIG = {
    "embeddings_model": "embeddings_model",
    "embeddings_model_trainable_layers": "trainable_layers",
    "number_of_epochs": "epochs",
    "batch_size": "batch_size",
    "maximum_tokens_per_window": "max_tokens",
    "dropout_rate": "dropout",
    "attention_dropout_rate": "attention_dropout",
    "learning_rate": "learning_rate",
    "head_learning_rate": "head_learning_rate",
    "l2_regularization_strength": "weight_decay",
    "warmup_ratio": "warmup_ratio",
    "early_stop_patience": "early_stopping_patience",
    "validation_fraction": "validation_fraction",
    "seed": "seed",
    "warmup_learning_rate": "warmup_learning_rate",
    "number_of_warmup_epochs": "warmup_epochs",
    "number_of_plateau_epochs": "plateau_epochs",
    "learning_rate_decay": "learning_rate_decay",
    "start_from_end": "start_from_end",
    "multiple_windows_aggregation": "window_pooling",
    "frozen_layer_cache_megabytes": "frozen_cache_megabytes",
    "onnx_inference": "onnx_inference",
    "precision": "precision",
}
DEPLOYMENT_TARGETS = {"sagemaker_serverless": "serverless", "sagemaker_realtime": "realtime", "local": "local"}


class UntrainableScore(PlexusError):
    """The score exists but is of a class this tool cannot train (a LangGraphScore, ...)."""


def a(noun: str) -> str:
    """`a LangGraphScore`, `an ExplainableClassifier`: a class name with its article.

    Example: `a("ExplainableClassifier") == "an ExplainableClassifier"`
    """
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def key_of(name: str) -> str:
    """Plexus's key rule: lowercase, each run of non-word characters becomes '-', trimmed of '-'.

    Example: `key_of("A Test Scorecard v 1.0") == "a-test-scorecard-v-1-0"`
    """
    return NON_WORD.sub("-", name.lower()).strip("-")


@dataclass(frozen=True)
class Deployment:
    """How the score is served (the score's `deployment:` block; Plexus's defaults).

    + type: `serverless`, `realtime`, or `local` (training.deployment_target: local, not provisioned)
    + memory_mb, max_concurrency: a serverless endpoint (MB 1024–6144 by 1024; 1–200)
    + instance_type, min_instances, max_instances: a realtime endpoint; more instances at most than at least
      gets Application Auto Scaling, tracking `target_invocations` per instance per minute
    + scale_in_cooldown, scale_out_cooldown: seconds between scaling steps
    """

    type: str = "serverless"
    memory_mb: int = 4096
    max_concurrency: int = 10
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int | None = None
    target_invocations: float = 1.0
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60

    @property
    def most_instances(self) -> int:
        """`max_instances`, which defaults to `min_instances` (no autoscaling)."""
        return self.min_instances if self.max_instances is None else self.max_instances

    @property
    def autoscaled(self) -> bool:
        return self.type == "realtime" and self.most_instances > self.min_instances


MAX_WAIT_DEFAULT_CAP = 28 * 86_400


@dataclass(frozen=True)
class TrainingSettings:
    """Where the score trains; the SageMaker fields matter only for SageMaker. `type` is Plexus's training type
    (`ml`, the only one trained here)."""

    type: str = "ml"
    platform: str = "local"
    deployment_target: str | None = None
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 86_400
    image_uri: str | None = None
    inference_image_uri: str | None = None
    framework_version: str = "2.6"  # transformers 5 needs torch >= 2.6; AWS publishes 2.6 images for py312
    processes_per_host: int | None = None  # None: one per GPU, else 1 (container.distributed)
    spot: bool = False
    max_wait_seconds: int | None = None

    @property
    def max_wait(self) -> int:
        """MaxWaitTimeInSeconds of a spot job: `max_wait_seconds`, else twice the run time (the run plus as long
        again to wait for spot capacity), at least the run time and at most 28 days."""
        if self.max_wait_seconds is not None:
            return self.max_wait_seconds
        return max(self.max_runtime_seconds, min(2 * self.max_runtime_seconds, MAX_WAIT_DEFAULT_CAP))


@dataclass(frozen=True)
class Score:
    """One score of one scorecard, with everything needed to train and deploy it.

    + data: the score's `data:` (a data source's name or path, or Plexus's data mapping), None when absent
    + data_at: `file:line:column` of `data.class` (else of `data`), for messages about where the data is
    + text_column: the score's own, else its scorecard's `transcript_column`
    + label_column: the score's own; else the data decides (`datasources.label_candidates`)
    """

    scorecard_name: str
    scorecard_key: str
    name: str
    key: str
    source: str
    config: TrainingConfig
    training: TrainingSettings
    deployment: Deployment = field(default_factory=Deployment)
    data: str | dict[str, Any] | None = None
    data_at: str = ""
    text_column: str | None = None
    label_column: str | None = None
    label_score_name: str | None = None
    label_field: str | None = None
    number_of_classes: int | None = None

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

    def with_training(self, **changes: Any) -> Score:
        """Apply command-line overrides of TrainingSettings fields; None means 'not given'."""
        given = {name: value for name, value in changes.items() if value is not None}
        return replace(self, training=replace(self.training, **given)) if given else self

    def with_deployment(self, **changes: Any) -> Score:
        """Apply command-line deployment overrides (Deployment fields); None means 'not given'."""
        given = {name: value for name, value in changes.items() if value is not None}
        return replace(self, deployment=replace(self.deployment, **given)) if given else self


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
class ScoreEntry:
    """One score as a scorecard holds it, before it is checked.

    + doc, path: the document and where the score is in it (`()`: the whole document, the per-score layout)
    + name: its `name`, or in a mapping of scores, its key there
    + named: False in a mapping of scores (the key names the score)
    """

    doc: YamlDocument
    path: Path_
    name: str
    named: bool = True

    @property
    def data(self) -> dict[str, Any]:
        value = self.doc.data
        for part in self.path:
            value = value[part]
        return value if isinstance(value, dict) else {}

    @property
    def score_class(self) -> Any:
        return self.data.get("class")

    @property
    def key(self) -> str:
        return str(self.data.get("key") or key_of(self.name))

    @property
    def place(self) -> str:
        """Where the score is: its file, and the line for a whole-scorecard file (which holds several)."""
        line = self.doc.locate(self.path)[0] if self.path else None
        return f"{self.doc.file}:{line}" if line is not None else self.doc.file


@dataclass(frozen=True)
class Scorecard:
    """A scorecard found on disk: its name, key, where it is (`where`: its file, or its directory and `/` for the
    per-score layout), its scores, its files that could not be read, and the defaults it gives its scores.

    + transcript_column: Plexus's scorecard-level text column, for scores that name none
    """

    name: str
    key: str
    where: str
    entries: list[ScoreEntry]
    unreadable: list[_Unreadable] = field(default_factory=list)
    transcript_column: str | None = None

    def entry(self, wanted: str) -> ScoreEntry:
        """The one score named or keyed `wanted`; an unparsable file that is, by its name or path, that score
        reports its problems."""
        found = [entry for entry in self.entries if _matches(wanted, entry.name, entry.key)]
        broken = [b for b in self.unreadable if b.matches(wanted)]
        if len(found) + len(broken) > 1:
            places = ", ".join([*(entry.place for entry in found), *(str(b.path) for b in broken)])
            count = len(found) + len(broken)
            raise PlexusError(f"scorecard {self.name!r} has {count} scores matching {wanted!r}: {places}; give its key")
        if broken:
            raise broken[0].error
        if not found:
            names = sorted(entry.name for entry in self.entries)
            raise PlexusError(
                f"scorecard {self.name!r} has no score {wanted!r}; it has: {', '.join(names) or 'none'}"
                + _also(self.unreadable)
            )
        return found[0]

    def score(self, entry: ScoreEntry) -> Score:
        """The entry as a Score, checked: UntrainableScore for a class this tool does not train, ManifestError with
        every problem of the score (and of the file's own fields) located file:line:column."""
        score_class = entry.score_class
        if isinstance(score_class, str) and score_class and score_class != TRAINABLE:
            raise UntrainableScore(f"{entry.name!r} is {a(score_class)}; plexus train trains {TRAINABLE} scores")
        # Loading went on past these (duplicate keys, ...) to find names; the ones in this score (or in the file's
        # own fields) are its problems.
        problems = [p for p in entry.doc.problems if in_scope(p.field, entry.path)]
        if problems:
            raise ManifestError(problems)
        check(entry.doc, "score", entry.path, named=entry.named)
        if not entry.named and entry.data.get("name", entry.name) != entry.name:
            message = f"differs from the score's key in scores ({entry.name!r}), which names it"
            raise ManifestError([entry.doc.problem((*entry.path, "name"), message)])
        return _score(self, entry)


def find_score(scorecard: str, score: str, root: Path = SCORECARDS_DIR) -> Score:
    """The score named (or keyed) `score` in the scorecard named (or keyed) `scorecard`, checked.

    Files that cannot be parsed, and files that parse but do not validate, stop a lookup only when they are
    what was asked for: the file holding the score found, or an unparsable file whose top-level name or key
    (when they come before its first problem), else its file name, is the one asked for; a per-score file's
    path (`scorecards/<Scorecard>/<Score>.yaml`) always names its score. Otherwise they are passed by, and
    named in the error when the scorecard or score is not found elsewhere.
    """
    card = find_scorecard(scorecard, root)
    return card.score(card.entry(score))


def find_scorecard(scorecard: str, root: Path = SCORECARDS_DIR) -> Scorecard:
    """The scorecard named (or keyed) `scorecard`, with its scores unchecked (`Scorecard.score` checks one)."""
    cards, unreadable = _scorecards(root)
    return _pick(scorecard, cards, unreadable, root)


def _scorecards(root: Path) -> tuple[list[Scorecard], list[_Unreadable]]:
    """Every scorecard under `root`, and every file there that could not be parsed (a per-score file's is also
    listed on its directory's scorecard)."""
    if not root.is_dir():
        raise PlexusError(f"no {root}/ directory here; run plexus from the project directory")
    cards: list[Scorecard] = []
    unreadable: list[_Unreadable] = []
    for path in sorted(root.glob("*.y*ml")):
        doc = _load(path, "scorecard", per_score=False)
        if isinstance(doc, _Unreadable):
            unreadable.append(doc)
            continue
        data = doc.data if isinstance(doc.data, dict) else {}
        name = str(data.get("name", path.stem))
        transcript = data.get("transcript_column") if isinstance(data.get("transcript_column"), str) else None
        key = str(data.get("key") or key_of(name))
        cards.append(Scorecard(name, key, str(path), _entries(doc), transcript_column=transcript))
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        loaded = [_load(path, "score", per_score=True) for path in sorted(directory.glob("*.y*ml"))]
        entries = [
            ScoreEntry(doc, (), str(doc.data.get("name", "")) if isinstance(doc.data, dict) else "")
            for doc in loaded
            if isinstance(doc, YamlDocument)
        ]
        broken = [doc for doc in loaded if isinstance(doc, _Unreadable)]
        unreadable += broken
        cards.append(Scorecard(directory.name, key_of(directory.name), f"{directory}/", entries, broken))
    return cards, unreadable


def _entries(doc: YamlDocument) -> list[ScoreEntry]:
    """The scores of a whole-scorecard file: `scores` (a list, or a mapping keyed by name) and each section's."""
    data = doc.data if isinstance(doc.data, dict) else {}
    places: list[Path_] = [("scores",)]
    sections = data.get("sections")
    if isinstance(sections, list):
        places += [("sections", i, "scores") for i, section in enumerate(sections) if isinstance(section, dict)]
    entries: list[ScoreEntry] = []
    for place in places:
        scores: Any = data
        for part in place:
            scores = scores.get(part) if isinstance(scores, dict) else scores[part]
        if isinstance(scores, list):
            entries += [
                ScoreEntry(doc, (*place, i), str(score.get("name", "")))
                for i, score in enumerate(scores)
                if isinstance(score, dict)
            ]
        elif isinstance(scores, dict):
            entries += [
                ScoreEntry(doc, (*place, name), name, named=False)
                for name, score in scores.items()
                if isinstance(name, str) and isinstance(score, dict | None)
            ]
    return entries


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


def _pick(wanted: str, cards: list[Scorecard], unreadable: list[_Unreadable], root: Path) -> Scorecard:
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


def _matches(wanted: str, name: str, key: str) -> bool:
    return wanted in (name, key) or key_of(wanted) == key


def _score(card: Scorecard, entry: ScoreEntry) -> Score:
    """A checked entry as a Score: settings by their documented names, Plexus's schedule when any of its fields
    is given, windows when `multiple_windows` (else one window), the deployment block with its defaults."""
    doc, path = entry.doc, entry.path
    data = canonical(entry.data)
    config = TrainingConfig(**{YAML_TO_CONFIG[k]: v for k, v in data.items() if k in YAML_TO_CONFIG})
    schedule = "plateau" if any(name in data for name in PLATEAU_SCHEDULE) else "linear"
    windows = data.get("maximum_windows", 0) if data.get("multiple_windows") else 1
    config = replace(config, schedule=schedule, max_windows=windows)
    training = dict(data.get("training", {}))
    _check_spot(doc, path, training)
    score = Score(
        scorecard_name=card.name,
        scorecard_key=card.key,
        name=entry.name,
        key=entry.key,
        source=doc.file,
        config=config,
        training=TrainingSettings(**training),
        deployment=_deployment(data, training),
        data=data.get("data"),
        data_at=_where(doc, (*path, "data", "class")),
        text_column=data.get("text_column") or card.transcript_column,
        label_column=data.get("label_column"),
        label_score_name=data.get("label_score_name"),
        label_field=data.get("label_field"),
        number_of_classes=data.get("number_of_classes"),
    )
    if _bad_key(card.key):
        if path:  # a whole-scorecard file: its name gave the key
            problem = doc.problem(("name",), f"the scorecard's name gives {_bad_key(card.key)}; set key")
        else:  # the per-score layout: the directory's name gave the key
            folder = str(Path(doc.file).parent)
            problem = Problem(folder, None, None, "", f"the directory name gives {_bad_key(card.key)}; rename it")
        raise ManifestError([problem])
    if _bad_key(score.key):
        where = (*path, "name") if entry.named else path
        raise ManifestError([doc.problem(where, f"the score's name gives {_bad_key(score.key)}; set key")])
    return score


def _check_spot(doc: YamlDocument, path: Path_, training: dict[str, Any]) -> None:
    """SageMaker refuses a spot job whose MaxWaitTimeInSeconds is below its MaxRuntimeInSeconds
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html): say so before any
    upload."""
    wait, runtime = training.get("max_wait_seconds"), training.get("max_runtime_seconds", 86_400)
    if training.get("spot") and wait is not None and wait < runtime:
        where = (*path, "training", "max_wait_seconds")
        message = f"{wait} is below max_runtime_seconds ({runtime}); a spot job waits at least as long as it runs"
        raise ManifestError([doc.problem(where, message)])


def _deployment(data: dict[str, Any], training: dict[str, Any]) -> Deployment:
    """The `deployment:` block over Plexus's defaults; without a `type`, `training.deployment_target` says it."""
    block = canonical(dict(data.get("deployment") or {}), "deployment")
    target = training.get("deployment_target")
    if "type" not in block and target in DEPLOYMENT_TARGETS:
        block["type"] = DEPLOYMENT_TARGETS[target]
    return Deployment(**block)


def _where(doc: YamlDocument, path: Path_) -> str:
    line, column = doc.locate(path)
    return f"{doc.file}:{line}:{column or 1}" if line is not None else doc.file


def _bad_key(key: str) -> str | None:
    """What is wrong with a derived key (it names directories and S3 key segments), else None."""
    size = len(key.encode("utf-8"))
    if not key:
        return "an empty key"
    return f"a key of {size} bytes (the limit is {MAX_KEY_BYTES})" if size > MAX_KEY_BYTES else None
