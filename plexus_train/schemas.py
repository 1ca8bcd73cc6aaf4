"""The JSON Schema of scorecard, score and data source YAML, checked like plexus-infra manifests are, and the
parameter names Plexus spells differently.

`schema.json` names each setting once, by its documented name; ALIASES adds the other spellings Plexus's
classifiers and documents use, with the same constraints. Giving both spellings of one setting is an error
naming both, at the line of the second.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator
from typing import Any

from plexus_infra.core.errors import ManifestError, Problem
from plexus_infra.core.schema import packaged_schema, schema_problems
from plexus_infra.core.yamldoc import Path_, YamlDocument, dotted

# Per schema definition: alias → the documented name of the same setting.
ALIASES: dict[str, dict[str, str]] = {
    "score": {
        "dropout": "dropout_rate",
        "epochs": "number_of_epochs",
        "early_stopping_patience": "early_stop_patience",
        "weight_decay": "l2_regularization_strength",
        "plateau_learning_rate": "learning_rate",
    },
    "deployment": {"target_invocations_per_instance": "target_invocations"},
}

# The fields that choose Plexus's warmup-plateau-decay schedule over the linear one (learning_rate, its plateau
# rate, belongs to both).
PLATEAU_SCHEDULE = (
    "warmup_learning_rate",
    "number_of_warmup_epochs",
    "number_of_plateau_epochs",
    "learning_rate_decay",
)

# What Plexus trains elsewhere (training.type): refused here with one line.
OTHER_TRAINING_TYPES = {"llm-finetune": "LLM fine-tuning", "lora": "LoRA fine-tuning"}
MIN_FRAMEWORK = (2, 6)  # the packaged code pins transformers 5, which needs torch >= 2.6


@functools.cache
def _schema() -> dict[str, Any]:
    """schema.json with every alias added beside its documented name."""
    schema = copy.deepcopy(packaged_schema("plexus_train", "schema.json"))
    for definition, aliases in ALIASES.items():
        properties = schema["$defs"][definition]["properties"]
        for alias, name in aliases.items():
            properties[alias] = {**properties[name], "description": f"alias of {name}"}
    return schema


def schema_for(kind: str) -> dict[str, Any]:
    """A schema whose root is the definition `kind` (scorecard, score, datasource)."""
    schema = _schema()
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}


def score_schema(at: Path_, *, named: bool = True) -> dict[str, Any]:
    """A schema for a document holding one score at `at` (`()`: the document is the score): a whole-scorecard
    file's own fields, and the score there; its other scores are not looked at. `named`: the score must carry
    its `name` (a mapping of scores names each by its key instead)."""
    target: dict[str, Any] = {"$ref": "#/$defs/score"}
    if named:
        target = {"allOf": [target, {"required": ["name"]}]}
    for part in reversed(at):
        target = {"prefixItems": [True] * part + [target]} if isinstance(part, int) else {"properties": {part: target}}
    schema = _schema()
    if not at:
        return {"$schema": schema["$schema"], "$defs": schema["$defs"], **target}
    return {**schema_for("scorecard"), "allOf": [target]}


def check(doc: YamlDocument, kind: str, at: Path_ | None = None, *, named: bool = True) -> None:
    """Raise ManifestError with every problem of `doc`, located file:line:column, in file order: `doc` as a
    `kind` (`datasource`), or with `at`, the one score at `at` and, in a whole-scorecard file, the file's own
    fields (nothing of its other scores)."""
    schema = schema_for(kind) if at is None else score_schema(at, named=named)
    found = [*schema_problems(doc, schema), *_value_problems(doc, at)]
    if at is not None:
        found += alias_problems(doc, at)
    problems = sorted(found, key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise ManifestError(problems)


def in_scope(field: str, at: Path_) -> bool:
    """Whether a problem's dotted field is inside the score at `at` or, in a whole-scorecard file, among the file's
    own fields (not inside another of its scores)."""
    if not at:
        return True
    if field.startswith(("scores", "sections")):
        prefix = dotted(at)
        return field == prefix or (field.startswith(prefix) and field[len(prefix)] in ".[")
    return True


def alias_problems(doc: YamlDocument, at: Path_) -> Iterator[Problem]:
    """Both spellings of one setting in the score at `at` (or its deployment block): one problem at the second."""
    score = _at(doc.data, at)
    blocks = [(at, score, ALIASES["score"])]
    if isinstance(score, dict) and isinstance(score.get("deployment"), dict):
        blocks.append(((*at, "deployment"), score["deployment"], ALIASES["deployment"]))
    for path, block, aliases in blocks:
        if not isinstance(block, dict):
            continue
        for alias, name in aliases.items():
            if alias in block and name in block:
                yield _both(doc, (*path, name), (*path, alias), f"one setting ({name}); keep one")
    if isinstance(score, dict) and "warmup_ratio" in score:
        plateau = [name for name in PLATEAU_SCHEDULE if name in score]
        if plateau:
            message = "two learning-rate schedules; keep one: warmup_ratio, or Plexus's epoch schedule"
            yield _both(doc, (*at, "warmup_ratio"), (*at, plateau[0]), message)
    training = score.get("training") if isinstance(score, dict) else None
    deployment = score.get("deployment") if isinstance(score, dict) else None
    served = isinstance(training, dict) and "deployment_target" in training
    if served and isinstance(deployment, dict) and "type" in deployment:
        message = "where the score is served, one setting; keep deployment.type"
        yield _both(doc, (*at, "deployment", "type"), (*at, "training", "deployment_target"), message)


def canonical(block: dict[str, Any], definition: str = "score") -> dict[str, Any]:
    """`block` with every alias spelled by its documented name (ALIASES[definition]).

    Example: `canonical({"dropout": 0.1}) == {"dropout_rate": 0.1}`
    """
    aliases = ALIASES[definition]
    return {aliases.get(key, key): value for key, value in block.items()}


def _both(doc: YamlDocument, one: Path_, other: Path_, what: str) -> Problem:
    """`X (line n) and Y are <what>`, located at whichever of the two comes second."""
    first, second = sorted((one, other), key=lambda path: doc.locate(path, key=True))
    line = doc.locate(first, key=True)[0]
    return doc.problem(second, f"{first[-1]} (line {line}) and {second[-1]} are {what}", key=True)


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _value_problems(doc: YamlDocument, at: Path_ | None) -> Iterator[Problem]:
    """What JSON Schema cannot say, in the part of `doc` being checked: `.nan`/`.inf` pass its minimum/maximum
    (every comparison is false), a `framework_version` whose PyTorch images cannot run the packaged code would
    only fail in the container, a training type trained elsewhere, fewer instances at most than at least."""
    for path, value in _nodes(doc.data, ()):
        if at is not None and not in_scope(dotted(path), at):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            yield doc.problem(path, f"expected a finite number, got {value}")
        elif path[-2:] == ("training", "framework_version") and isinstance(value, str):
            version = _version(value)
            if version is not None and version < MIN_FRAMEWORK:
                yield doc.problem(
                    path, f"PyTorch {value} images cannot run the packaged code (transformers 5 needs torch >= 2.6)"
                )
        elif path[-2:] == ("training", "type") and value in OTHER_TRAINING_TYPES:
            what = OTHER_TRAINING_TYPES[value]
            yield doc.problem(path, f"{what} ({value}) is not done by plexus train, which trains type ml")
        elif path[-1:] == ("deployment",) and isinstance(value, dict):
            low, high = value.get("min_instances"), value.get("max_instances")
            if isinstance(low, int) and isinstance(high, int) and high < low:
                yield doc.problem((*path, "max_instances"), f"{high} is below min_instances ({low})")


def _nodes(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _version(text: str) -> tuple[int, int] | None:
    major, _, rest = text.partition(".")
    minor = rest.partition(".")[0]
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None
