"""Property-based tests for the training module's inputs: score YAML (both layouts), data source YAML and data
files. Valid scores load and are found by name and key; mutated ones are rejected with located one-line problems;
arbitrary text, bytes and CSVs give a valid result or a PlexusError, never another exception, and bad data never
reaches training. Seeded and bounded (`derandomize=True`) so the file runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from plexus_infra.core.errors import ManifestError, PlexusError
from plexus_train import datasources
from plexus_train.container.dataset import Dataset, read_csv, to_dataset
from plexus_train.platforms.local import LocalPlatform
from plexus_train.platforms.sagemaker import SageMakerPlatform
from plexus_train.scorecards import Score, UntrainableScore, find_score
from tests.mutations import Path_, deeply_nested, nodes, other_type, replaced
from tests.train.helpers import plexus_cli

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- the rules, restated here so a wrong rule in the product cannot agree with itself ----------------------


def plexus_key(name: str) -> str:
    """Plexus's key rule: lowercase, each run of non-word characters becomes '-', trimmed."""
    return re.sub(r"\W+", "-", name.lower()).strip("-")


# YAML field → (TrainingConfig attribute, lowest, highest); None: no bound on that side.
NUMBERS: dict[str, tuple[str, float | None, float | None]] = {
    "embeddings_model_trainable_layers": ("trainable_layers", 0, 100),
    "number_of_epochs": ("epochs", 1, 1000),
    "batch_size": ("batch_size", 1, 4096),
    "maximum_tokens_per_window": ("max_tokens", 8, 8192),
    "dropout_rate": ("dropout", 0, 0.999),
    "learning_rate": ("learning_rate", 1e-9, 1),
    "l2_regularization_strength": ("weight_decay", 0, 1),
    "warmup_ratio": ("warmup_ratio", 0, 1),
    "early_stop_patience": ("early_stopping_patience", 1, 1000),
    "validation_fraction": ("validation_fraction", 0.01, 0.5),
    "seed": ("seed", 0, 2**32 - 1),
}
INTEGERS = {
    "embeddings_model_trainable_layers",
    "number_of_epochs",
    "batch_size",
    "maximum_tokens_per_window",
    "early_stop_patience",
    "seed",
}
# The other spellings Plexus uses for the same settings (restated, as the rules above are).
ALIASES = {
    "dropout": "dropout_rate",
    "epochs": "number_of_epochs",
    "early_stopping_patience": "early_stop_patience",
    "weight_decay": "l2_regularization_strength",
    "plateau_learning_rate": "learning_rate",
}
TRAINING_NUMBERS = {
    "instance_count": (1, 100),
    "volume_size_gb": (1, 16384),
    "max_runtime_seconds": (60, 2419200),
}
MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)

# Text YAML can carry exactly: NEL and the Unicode line/paragraph separators are line breaks in YAML 1.1.
yaml_text = st.characters(exclude_categories=["Cs", "Zl", "Zp"], exclude_characters="\x85")
strings = st.text(yaml_text, min_size=1, max_size=40)

# --- valid score YAML --------------------------------------------------------------------------------------

names = st.text(
    st.characters(categories=["L", "N", "Zs", "P", "S"], exclude_characters="/\\\x85"), min_size=1, max_size=40
).filter(lambda name: plexus_key(name) != "" and name.strip() == name and name not in (".", ".."))
explicit_keys = st.from_regex(r"[a-z0-9_]{1,12}(-[a-z0-9_]{1,12}){0,3}", fullmatch=True)
instance_types = st.from_regex(r"ml\.[a-z0-9]{1,8}\.[a-z0-9]{1,8}", fullmatch=True)


def number(field: str) -> st.SearchStrategy[Any]:
    _, low, high = NUMBERS[field]
    if field in INTEGERS:
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


training_blocks = st.fixed_dictionaries(
    {},
    optional={
        "platform": st.sampled_from(["local", "sagemaker"]),
        "deployment_target": st.sampled_from(["local", "sagemaker_serverless", "sagemaker_realtime"]),
        "instance_type": instance_types,
        **{field: st.integers(low, high) for field, (low, high) in TRAINING_NUMBERS.items()},
        "image_uri": strings,
        "inference_image_uri": strings,
        "framework_version": st.from_regex(r"2\.[6-9]|[3-9]\.[0-9]{1,2}|[1-9][0-9]\.[0-9]{1,2}", fullmatch=True),
    },
)
# No `type`: training.deployment_target says the same, and both at once are refused (a test of its own).
deployment_blocks = st.fixed_dictionaries(
    {},
    optional={
        "memory_mb": st.sampled_from(MEMORY_SIZES),
        "max_concurrency": st.integers(1, 200),
        "instance_type": instance_types,
        "min_instances": st.integers(1, 50),
        "max_instances": st.integers(50, 100),
        "target_invocations": st.floats(0.5, 1000),
        "scale_in_cooldown": st.integers(0, 86400),
    },
)
scores = st.fixed_dictionaries(
    {"name": names, "class": st.just("BERTClassifier")},
    optional={
        "key": explicit_keys,
        "id": st.integers(0, 10**6) | st.text(max_size=20),
        "description": st.text(yaml_text, max_size=200),
        "data": strings,
        "embeddings_model": strings,
        **{field: number(field) for field in NUMBERS},
        "text_column": strings,
        "label_column": strings,
        "training": training_blocks,
        "deployment": deployment_blocks,
        "version": st.uuids().map(str),
        "parent": st.uuids().map(str) | st.none(),
        "externalId": st.integers(0, 10**6) | st.text(max_size=20),
        "tags": st.lists(st.text(yaml_text, max_size=10), max_size=3),
    },
)


@st.composite
def spelled(draw: st.DrawFn, score: dict[str, Any]) -> dict[str, Any]:
    """`score` with some settings in their other spelling (ALIASES), one spelling each."""
    documented = {name: alias for alias, name in ALIASES.items()}
    return {documented[k] if k in documented and draw(st.booleans()) else k: v for k, v in score.items()}


def score_key(score: dict[str, Any]) -> str:
    return score.get("key") or plexus_key(score["name"])


@st.composite
def projects(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(layout, scorecard): `whole` is one file with `scores:`; `per-score` is a directory of score files."""
    layout = draw(st.sampled_from(["whole", "per-score"]))
    card: dict[str, Any] = {"name": draw(names)}
    if layout == "whole" and draw(st.booleans()):
        card["key"] = draw(explicit_keys)
    card["scores"] = [
        draw(spelled(score)) for score in draw(st.lists(scores, min_size=1, max_size=3, unique_by=score_key))
    ]
    for score in card["scores"]:  # every score's name and key find that score alone
        assume(sum(matches(score["name"], other) for other in card["scores"]) == 1)
    return layout, card


def matches(wanted: str, score: dict[str, Any]) -> bool:
    return wanted in (score["name"], score_key(score)) or plexus_key(wanted) == score_key(score)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000)


def write_project(root: Path, layout: str, card: dict[str, Any]) -> dict[int, Path]:
    """Write the scorecard under root/scorecards; returns the file holding each score (by index)."""
    folder = root / "scorecards"
    folder.mkdir(parents=True)
    if layout == "whole":
        (folder / "card.yaml").write_text(dump(card), encoding="utf-8")
        return dict.fromkeys(range(len(card["scores"])), folder / "card.yaml")
    directory = folder / card["name"]
    directory.mkdir()
    files = {}
    for index, score in enumerate(card["scores"]):
        files[index] = directory / f"score-{index}.yaml"
        files[index].write_text(dump(score), encoding="utf-8")
    return files


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def assert_loaded(score: Score, card: dict[str, Any], data: dict[str, Any], source: Path) -> None:
    """The Score carries every value of its YAML, under the names TrainingConfig uses, whichever spelling."""
    data = {ALIASES.get(key, key): value for key, value in data.items()}
    assert score.scorecard_name == card["name"]
    assert score.scorecard_key == (card.get("key") or plexus_key(card["name"]))
    assert (score.name, score.key, score.source) == (data["name"], score_key(data), str(source))
    assert score.path == f"{score.scorecard_key}/{score.key}"
    for field, (attribute, _, _) in NUMBERS.items():
        if field in data:
            assert getattr(score.config, attribute) == data[field]
            assert type(getattr(score.config, attribute)) is type(data[field])
    if "embeddings_model" in data:
        assert score.config.embeddings_model == data["embeddings_model"]
    assert (score.data, score.text_column, score.label_column) == tuple(
        data.get(field) for field in ("data", "text_column", "label_column")
    )
    training = data.get("training", {})
    for field, value in training.items():
        assert getattr(score.training, field) == value
    for field, value in data.get("deployment", {}).items():
        assert getattr(score.deployment, field) == value
    target = training.get("deployment_target", "sagemaker_serverless")  # none said: serverless
    assert score.deployment.type == target.removeprefix("sagemaker_")
    if "platform" not in training:
        assert score.training.platform == "local"


@SETTINGS
@given(case=projects())
def test_generated_valid_score_yaml_loads_in_both_layouts_and_is_found_by_name_and_key(
    case: tuple[str, dict[str, Any]],
) -> None:
    layout, card = case
    with scratch() as root:
        files = write_project(root, layout, card)
        card_key = card.get("key") or plexus_key(card["name"])
        for index, data in enumerate(card["scores"]):
            found = find_score(card["name"], data["name"], root / "scorecards")
            assert_loaded(found, card, data, files[index])
            for by_card in (card_key, card["name"]):
                for by_score in (data["name"], score_key(data)):
                    assert find_score(by_card, by_score, root / "scorecards") == found


def test_plexus_key_rule_examples() -> None:
    assert plexus_key("A Test Scorecard v 1.0") == "a-test-scorecard-v-1-0"
    assert plexus_key("  Ticket -- Topic! ") == "ticket-topic"
    assert plexus_key("Überprüfung_2") == "überprüfung_2"


# --- mutations that must be rejected ------------------------------------------------------------------------

IDENTITY = {"name", "key", "id"}  # changing these changes what a lookup finds: mutated by their own cases


def score_root(layout: str) -> Path_:
    """Where the first score lives in its document."""
    return ("scores", 0) if layout == "whole" else ()


def inside_score(layout: str, data: Any) -> list[tuple[Path_, Any]]:
    """Paths strictly inside the first score, except its identity fields."""
    root = score_root(layout)
    return [
        (path, value)
        for path, value in nodes(data)
        if path[: len(root)] == root and len(path) > len(root) and path[len(root)] not in IDENTITY
    ]


Case = tuple[str, Any, str, str]  # layout, the document to write, scorecard and score to look up


NULLABLE = {"description", "parent"}  # null is one of their types (Plexus writes `parent: null` for a first version)
# Fields whose schema takes several types: another type may still be one of theirs.
TYPE_UNIONS = {"id": (str, int), "externalId": (str, int), "version": (str, int), "parent": (str, int), "data": (str,)}


def _wrong_type(draw: st.DrawFn, layout: str, doc: Any) -> Any:
    path, value = draw(st.sampled_from(inside_score(layout, doc)))
    allowed = TYPE_UNIONS.get(str(path[-1]), ())
    other = other_type(value, float_takes_int=True).filter(
        lambda new: not (new is None and path[-1] in NULLABLE) and not (allowed and type(new) in allowed)
    )
    return replaced(doc, path, draw(other))


def _out_of_range(draw: st.DrawFn, layout: str, doc: Any) -> Any:
    root = score_root(layout)
    field = draw(st.sampled_from([*sorted(NUMBERS), "training", "deployment", "enum"]))
    if field == "training":
        name = draw(st.sampled_from(sorted(TRAINING_NUMBERS)))
        low, high = TRAINING_NUMBERS[name]
        value = draw(st.integers(max_value=low - 1) | st.integers(min_value=high + 1))
        return replaced(doc, (*root, "training"), {name: value})
    if field == "deployment":
        value = draw(st.integers(1, 10_000).filter(lambda n: n not in MEMORY_SIZES))
        return replaced(doc, (*root, "deployment"), {"memory_mb": value})
    if field == "enum":
        name = draw(st.sampled_from(["platform", "deployment_target"]))
        return replaced(doc, (*root, "training"), {name: draw(st.text(max_size=12).filter(lambda t: t != "local"))})
    _, low, high = NUMBERS[field]
    if field in INTEGERS:
        bad = st.integers(max_value=int(low) - 1) | st.integers(min_value=int(high) + 1, max_value=10**40)
    else:
        bad = BAD_FLOATS[field] | st.sampled_from([math.nan, math.inf, -math.inf])
    return replaced(doc, (*root, field), draw(bad))


# Outside each float field's range, with its exclusive ends: dropout < 1, learning rate > 0.
BAD_FLOATS = {
    "dropout_rate": st.floats(max_value=0).filter(lambda f: f < 0) | st.floats(min_value=1),
    "learning_rate": st.floats(max_value=0) | st.floats(min_value=1).filter(lambda f: f > 1),
    "l2_regularization_strength": st.floats(max_value=0).filter(lambda f: f < 0)
    | st.floats(min_value=1).filter(lambda f: f > 1),
    "warmup_ratio": st.floats(max_value=0).filter(lambda f: f < 0) | st.floats(min_value=1).filter(lambda f: f > 1),
    "validation_fraction": st.floats(max_value=0.01).filter(lambda f: f < 0.01)
    | st.floats(min_value=0.5).filter(lambda f: f > 0.5),
}


SCORE_FIELDS = {"name", "key", "id", "description", "class", "data", "embeddings_model", "text_column"}
SCORE_FIELDS |= {"label_column", "training", "deployment", *NUMBERS, *ALIASES}
# Plexus's own fields, which a score file may carry.
SCORE_FIELDS |= {"version", "parent", "externalId", "originalExternalId", "tags", "depends_on", "dependencies"}
SCORE_FIELDS |= {"section", "disabled", "isDisabled", "scorecard_name", "validation", "label_score_name"}
SCORE_FIELDS |= {"label_field", "number_of_classes", "multiple_windows", "maximum_windows", "start_from_end"}
SCORE_FIELDS |= {"multiple_windows_aggregation", "warmup_learning_rate", "number_of_warmup_epochs"}
SCORE_FIELDS |= {"number_of_plateau_epochs", "learning_rate_decay"}
SCORECARD_FIELDS = {"name", "key", "id", "externalId", "description", "metadata", "family", "scorecard_folder_path"}
SCORECARD_FIELDS |= {"transcript_column", "scores", "sections"}


def _unknown_key(draw: st.DrawFn, layout: str, doc: Any) -> Any:
    root = score_root(layout)
    candidates = [(*root,), (*root, "training")] + ([()] if layout == "whole" else [])
    path = draw(st.sampled_from(candidates))
    known = SCORE_FIELDS | SCORECARD_FIELDS | {"platform", "deployment_target", "instance_type", "type"}
    known |= {"instance_count", "volume_size_gb", "max_runtime_seconds", "image_uri", "inference_image_uri"}
    key = draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in known and k != "<<"))
    if path and path[-1] == "training":
        doc = replaced(doc, path, {})
    return replaced(doc, (*path, key), draw(st.integers() | st.text(max_size=10)))


def _deep_nesting(draw: st.DrawFn, layout: str, doc: Any) -> Any:
    path, _ = draw(st.sampled_from(inside_score(layout, doc)))
    value: Any = "bottom"
    for _ in range(draw(st.integers(70, 300))):
        value = draw(st.sampled_from([[value], {"x": value}]))
    return replaced(doc, path, value)


def _huge_value(draw: st.DrawFn, layout: str, doc: Any) -> Any:
    root = score_root(layout)
    field = draw(st.sampled_from(["description", "data", "embeddings_model", "text_column", "image_uri"]))
    value = draw(st.sampled_from("xé🚀")) * draw(st.integers(10_001, 200_000))
    path = (*root, "training", field) if field == "image_uri" else (*root, field)
    if field == "image_uri":
        doc = replaced(doc, (*root, "training"), {})
    return replaced(doc, path, value)


MUST_FAIL: dict[str, Callable[[st.DrawFn, str, Any], Any]] = {
    "wrong-type": _wrong_type,
    "out-of-range": _out_of_range,
    "unknown-key": _unknown_key,
    "deep-nesting": _deep_nesting,
    "huge-value": _huge_value,
}
BROKEN_KEYS = st.sampled_from(["Upper", "a b", "a--b", "-a", "a-", "", "ab\n", "é", "a.b"]) | st.just("k" * 101)


@st.composite
def broken_scores(draw: st.DrawFn) -> Case:
    """A valid one-score scorecard, broken in one way; looked up by names that still find the broken score."""
    layout, card = draw(projects())
    card["scores"] = card["scores"][:1]
    doc = card if layout == "whole" else card["scores"][0]
    scorecard, score = card["name"], card["scores"][0]["name"]
    kind = draw(st.sampled_from([*sorted(MUST_FAIL), "broken-key", "long-name", "wrong-class"]))
    if kind in MUST_FAIL:
        return layout, MUST_FAIL[kind](draw, layout, doc), scorecard, score
    root = score_root(layout)
    if kind == "broken-key":
        at = draw(st.sampled_from([root, ()] if layout == "whole" else [root]))
        return layout, replaced(doc, (*at, "key"), draw(BROKEN_KEYS)), scorecard, score
    if kind == "long-name":
        score = score + "n" * draw(st.integers(201, 5000))
        return layout, replaced(doc, (*root, "name"), score), scorecard, score
    # An empty class names none: a located problem (a class named is another case: the test below).
    return layout, replaced(doc, (*root, "class"), ""), scorecard, score


def write_case(root: Path, layout: str, doc: Any, scorecard: str, *, text: str | None = None) -> Path:
    folder = root / "scorecards"
    target = folder / "card.yaml" if layout == "whole" else folder / scorecard / "score.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(dump(doc) if text is None else text, encoding="utf-8")
    return target


def assert_well_formed(error: ManifestError, files: set[str], *, located: bool) -> None:
    """Every problem names one of the files, is one printable line, and (when asked) has a line and column."""
    assert error.problems
    for problem in error.problems:
        assert problem.file in files, (problem.file, files)
        assert len(str(problem).splitlines()) == 1, str(problem)
        str(problem).encode("utf-8")
        if located:
            assert problem.line is not None and problem.column is not None, str(problem)


def outcome(scorecard: str, score: str, root: Path) -> Score | PlexusError:
    """What looking the score up gives: anything but a Score or a PlexusError propagates and fails the test."""
    try:
        return find_score(scorecard, score, root / "scorecards")
    except PlexusError as error:
        return error


@settings(SETTINGS, max_examples=300)
@given(case=broken_scores())
def test_mutated_score_yaml_is_rejected_with_located_one_line_problems(case: Case) -> None:
    layout, doc, scorecard, score = case
    with scratch() as root:
        target = write_case(root, layout, doc, scorecard)
        result = outcome(scorecard, score, root)
    assert isinstance(result, ManifestError), f"a broken score loaded or failed unlocated: {result!r}"
    assert_well_formed(result, {str(target.relative_to(root)), str(target)}, located=True)


@settings(SETTINGS, max_examples=60)
@given(case=projects(), other=st.text(yaml_text, min_size=1, max_size=30).filter(lambda c: c != "BERTClassifier"))
def test_a_score_of_any_other_class_is_one_line_naming_it_whatever_else_it_holds(
    case: tuple[str, dict[str, Any]], other: str
) -> None:
    layout, card = case
    card["scores"] = card["scores"][:1]
    score = {**card["scores"][0], "class": other, "graph": [{"name": "x", "class": "Classifier"}], "colour": 1}
    doc = {**card, "scores": [score]} if layout == "whole" else score
    with scratch() as root:
        write_case(root, layout, doc, card["name"])
        result = outcome(card["name"], score["name"], root)
    assert isinstance(result, UntrainableScore), result
    article = "an" if other[:1].lower() in "aeiou" else "a"
    assert str(result) == f"{score['name']!r} is {article} {other}; plexus train trains BERTClassifier scores"


@settings(SETTINGS, max_examples=60)
@given(case=projects(), line=st.integers(0, 1000))
def test_a_duplicate_key_in_score_yaml_is_an_error_on_its_line(case: tuple[str, dict[str, Any]], line: int) -> None:
    layout, card = case
    card["scores"] = card["scores"][:1]
    doc = card if layout == "whole" else card["scores"][0]
    lines = dump(doc).splitlines(keepends=True)
    simple = [i for i, text in enumerate(lines) if re.fullmatch(r"\s*(- )?[a-z_]+: [^'\"\n]*\n", text)]
    chosen = simple[line % len(simple)]
    duplicate = re.sub(r"^(\s*)- ", r"\1  ", lines[chosen])  # the same key again, inside the same mapping
    text = "".join([*lines[: chosen + 1], duplicate, *lines[chosen + 1 :]])
    with scratch() as root:
        target = write_case(root, layout, None, card["name"], text=text)
        result = outcome(card["name"], card["scores"][0]["name"], root)
    assert isinstance(result, ManifestError), result
    assert_well_formed(result, {str(target)}, located=True)
    assert any(p.line == chosen + 2 and "duplicate key" in p.message for p in result.problems), result.problems


@st.composite
def unicode_everywhere(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    layout, card = draw(projects())
    card["scores"] = card["scores"][:1]
    doc = card if layout == "whole" else card["scores"][0]
    texts = [path for path, value in inside_score(layout, doc) if isinstance(value, str) and path[-1] != "class"]
    for path in draw(st.lists(st.sampled_from(texts), max_size=3)) if texts else []:
        doc = replaced(doc, path, draw(st.text(max_size=50)))
    return layout, doc if layout == "whole" else {**card, "scores": [doc]}


@SETTINGS
@given(case=unicode_everywhere())
def test_random_unicode_in_any_score_field_loads_or_is_rejected_cleanly(case: tuple[str, dict[str, Any]]) -> None:
    layout, card = case
    with scratch() as root:
        files = write_project(root, layout, card)
        result = outcome(card["name"], card["scores"][0]["name"], root)
    if isinstance(result, ManifestError):
        assert_well_formed(result, {str(path) for path in files.values()}, located=True)
    else:
        assert isinstance(result, Score), result


# --- raw text and bytes as score files ----------------------------------------------------------------------

YAML_TOKENS = [*":-[]{}&*!|>'\"%@`#,?<~=\n\t \\", "ab", "1", ".nan", "yes", "<<", "\ufeff", "name: x\n", "- "]
YAML_TOKENS += ["scores:\n", "  - name: y\n", "    class: BERTClassifier\n", "key: x\n", "seed: 1e400\n"]
YAML_ISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=120).map("".join)


@settings(SETTINGS, max_examples=200)
@given(
    raw=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode) | YAML_ISH.map(str.encode),
    layout=st.sampled_from(["whole", "per-score"]),
)
def test_arbitrary_bytes_as_a_score_file_give_a_score_or_a_plexus_error(raw: bytes, layout: str) -> None:
    with scratch() as root:
        target = write_case(root, layout, None, "x", text="")
        target.write_bytes(raw)
        for scorecard, score in (("x", "y"), ("card", "y"), ("x", "x")):
            result = outcome(scorecard, score, root)
            if isinstance(result, ManifestError):
                assert_well_formed(result, {str(target)}, located=False)
            else:
                assert isinstance(result, Score | PlexusError), result


@st.composite
def damaged_scores(draw: st.DrawFn) -> tuple[str, str, str, bytes]:
    """A valid score file's bytes with a few bytes inserted, deleted or overwritten."""
    layout, card = draw(projects())
    doc = card if layout == "whole" else card["scores"][0]
    raw = bytearray(dump(doc).encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b":", b"-", b"  ", b"\n", b"&a", b"*a"]))
        raw[at : at + (0 if action == "insert" else len(chunk))] = b"" if action == "delete" else chunk
    return layout, card["name"], card["scores"][0]["name"], bytes(raw)


@settings(SETTINGS, max_examples=150)
@given(case=damaged_scores())
def test_damaged_score_file_gives_a_score_or_a_plexus_error(case: tuple[str, str, str, bytes]) -> None:
    layout, scorecard, score, raw = case
    with scratch() as root:
        target = write_case(root, layout, None, scorecard, text="")
        target.write_bytes(raw)
        result = outcome(scorecard, score, root)
    if isinstance(result, ManifestError):
        assert_well_formed(result, {str(target)}, located=False)
    else:
        assert isinstance(result, Score | PlexusError), result


# --- the CLI on bad score files: one line, exit 1, no traceback ----------------------------------------------

BAD_SCORE_FILES = {
    "wrong type": ("    number_of_epochs: [3]\n", ":5:23: scores[0].number_of_epochs: expected integer"),
    "out of range": ("    dropout: .nan\n", ":5:14: scores[0].dropout: expected a finite number, got nan"),
    "unknown key": ("    colour: blue\n", ":5:5: scores[0].colour: unknown field"),
    "duplicate key": ("    class: BERTClassifier\n", ":5:5: scores[0].class: duplicate key"),
    "huge seed": ("    seed: 100000000000000000000000\n", ":5:11: scores[0].seed: 100000000000000000000000 is greater"),
}


@pytest.mark.parametrize("problem", sorted(BAD_SCORE_FILES))
def test_cli_train_on_a_bad_score_file_prints_one_located_line_and_exits_1(problem: str, tmp_path: Path) -> None:
    line, expected = BAD_SCORE_FILES[problem]
    (tmp_path / "scorecards").mkdir()
    header = "name: Bad\nscores:\n  - name: Broken\n    class: BERTClassifier\n"
    (tmp_path / "scorecards" / "bad.yaml").write_text(header + line, encoding="utf-8")
    result = plexus_cli(
        "train", "--scorecard", "Bad", "--score", "Broken", "--data", "x.csv", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: scorecards/bad.yaml" + expected), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "models").exists()


# --- data files and data sources, through `plexus train` in-process ----------------------------------------

SCORE = """\
name: Fuzz
scores:
  - name: Topic
    class: BERTClassifier
    text_column: text
    label_column: label
"""


class Started(Exception):
    """Raised by the stand-in trainer: reaching it means the data passed every check."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset


@pytest.fixture(scope="module")
def fuzz_project() -> Iterator[Path]:
    """A project directory (the current directory while the tests run) whose only score is Fuzz / Topic."""
    with scratch() as root:
        (root / "scorecards").mkdir()
        (root / "datasources").mkdir()
        (root / "scorecards" / "fuzz.yaml").write_text(SCORE, encoding="utf-8")
        before = Path.cwd()
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(before)


Trial = tuple[int, str, Dataset | None]  # exit code, stderr, the dataset training started with


@pytest.fixture
def plexus_train(monkeypatch: pytest.MonkeyPatch, plexus: Callable[..., Any]) -> Callable[[str], Trial]:
    """`plexus train --scorecard Fuzz --score Topic --data DATA` in-process, with any platform's train() raising
    Started instead of training (and writing nothing): exit code, stderr, the dataset training would have started
    with (None when it did not start)."""

    def started(_self: Any, _score: Score, dataset: Dataset) -> Any:
        raise Started(dataset)

    monkeypatch.setattr(LocalPlatform, "train", started)
    monkeypatch.setattr(SageMakerPlatform, "train", started)

    def run(data: str) -> Trial:
        try:
            ran = plexus("train", "--scorecard", "Fuzz", "--score", "Topic", "--data", data)
        except Started as reached:
            return 0, "", reached.dataset
        return ran.code, ran.err, None

    return run


def assert_trainable(dataset: Dataset, source: str) -> None:
    """What every check promises, restated: 2+ classes of 2+ examples, texts that are text, labels trimmed;
    and the CSV a SageMaker job reads back gives the same examples."""
    counts = dataset.class_counts()
    assert len(counts) >= 2 and min(counts.values()) >= 2, counts
    assert dataset.source == source and len(dataset.texts) == len(dataset.labels)
    for text, label in zip(dataset.texts, dataset.labels, strict=True):
        assert isinstance(text, str) and text.strip()
        with contextlib.suppress(ValueError):
            float(text)
            raise AssertionError(f"a number passed as text: {text!r}")
        assert label == label.strip() and label
    again = to_dataset(*read_csv(dataset.to_csv(), "again"), "again", dataset.text_column, dataset.label_column)
    assert (again.texts, again.labels) == (dataset.texts, dataset.labels)


def assert_refused(code: int, err: str, mention: str, root: Path) -> None:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    assert all(mention in line for line in lines), (mention, err)
    assert "Traceback" not in err
    assert not (root / "models").exists()


HEADERS = st.sampled_from(["text", "label", "other", "Text", " label", "text "]) | st.text(max_size=8)
CELLS = st.one_of(
    st.sampled_from(["billing", "shipping", "refund", " billing ", "", "3", "4.5", "nan", "-1e3", "1_000"]),
    st.text(max_size=30),
    st.text(st.sampled_from(",\"\n\r\x00 ab'é🚀\t"), max_size=12),
    st.just("x" * 140_000),  # beyond csv's default field limit
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """CSV bytes: random or missing columns, ragged rows, odd values; written properly or glued by hand."""
    kind = draw(st.sampled_from(["clean", "clean", "written", "written", "glued", "binary", "latin-1"]))
    if kind == "binary":
        return draw(st.binary(max_size=500))
    if kind == "clean":  # mostly trainable: odd but legal texts, a few classes
        texts = st.text(st.sampled_from(",\"\n\r\x00 ab'é🚀\t[]"), min_size=1, max_size=12) | st.text(max_size=30)
        texts = texts.map(lambda text: f"{text} ok" if draw(st.booleans()) else f"ok {text}")
        rows = draw(st.lists(st.tuples(texts, st.sampled_from(["a", "b", " c "])), min_size=4, max_size=20))
        out = io.StringIO()
        csv.writer(out).writerows([("text", "label"), *rows])
        return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))
    header = draw(st.lists(HEADERS, max_size=4) | st.permutations(["text", "label"]).map(list))
    rows = draw(st.lists(st.lists(CELLS, max_size=len(header) + 1), max_size=12))
    if draw(st.booleans()) and "text" in header and "label" in header:  # often a trainable core
        labels = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=4, max_size=8))
        rows += [["hello world" if h == "text" else label if h == "label" else "z" for h in header] for label in labels]
    if kind == "glued":
        text = "\n".join(",".join(row) for row in [header, *rows])
    else:
        out = io.StringIO()
        csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
        text = out.getvalue()
    encoding = "latin-1" if kind == "latin-1" else draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return text.encode(encoding, errors="replace")


@settings(SETTINGS, max_examples=150)
@given(raw=csv_files())
def test_random_csv_gives_a_trainable_dataset_or_one_clean_error_before_training(
    raw: bytes, fuzz_project: Path, plexus_train: Callable[[str], Trial]
) -> None:
    path = fuzz_project / "data.csv"
    path.write_bytes(raw)
    code, err, dataset = plexus_train("data.csv")
    event("trainable" if dataset is not None else "refused")
    if dataset is not None:
        assert_trainable(dataset, "data.csv")
    else:
        assert_refused(code, err, "data.csv", fuzz_project)
        assert len(err.strip().splitlines()) == 1, err


DATASOURCE_FIELDS = {"name", "description", "path", "format", "text_column", "label_column"}
datasource_docs = st.fixed_dictionaries(
    {"path": st.just("good.csv")},
    optional={
        "name": st.text(yaml_text, max_size=30),
        "description": st.text(yaml_text, max_size=100),
        "format": st.just("csv"),
        "text_column": st.just("text"),
        "label_column": st.just("label"),
    },
)


@st.composite
def broken_datasources(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(datasource_docs)
    kind = draw(st.sampled_from(["wrong-type", "unknown-key", "deep-nesting", "huge-value", "format", "no-path"]))
    if kind == "wrong-type":
        field = draw(st.sampled_from(sorted(doc)))
        return {**doc, field: draw(other_type(doc[field], float_takes_int=True))}
    if kind == "unknown-key":
        key = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in DATASOURCE_FIELDS and k != "<<"))
        return {**doc, key: draw(st.integers() | st.text(max_size=10))}
    if kind == "deep-nesting":
        return {**doc, draw(st.sampled_from(sorted(doc))): deeply_nested(draw(st.integers(70, 300)))}
    if kind == "huge-value":
        field = draw(st.sampled_from(["name", "description", "path", "text_column"]))
        return {**doc, field: draw(st.sampled_from("xé🚀")) * draw(st.integers(10_001, 100_000))}
    if kind == "format":
        return {**doc, "format": draw(st.text(max_size=10).filter(lambda f: f not in ("csv", "parquet")))}
    return {k: v for k, v in doc.items() if k != "path"}


GOOD_CSV = "text,label\nhello there,a\nsee you,a\nnice day,b\nbad day,b\n"


@settings(SETTINGS, max_examples=100)
@given(doc=broken_datasources())
def test_mutated_datasource_yaml_is_refused_with_located_lines_before_training(
    doc: dict[str, Any], fuzz_project: Path, plexus_train: Callable[[str], Trial]
) -> None:
    (fuzz_project / "datasources" / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    (fuzz_project / "datasources" / "src.yaml").write_text(dump(doc), encoding="utf-8")
    code, err, dataset = plexus_train("src")
    assert dataset is None, "a broken data source reached training"
    assert_refused(code, err, "datasources/src.yaml:", fuzz_project)
    with pytest.raises(ManifestError) as caught:
        datasources.resolve("src", Path("datasources"))
    assert_well_formed(caught.value, {"datasources/src.yaml"}, located=True)


@SETTINGS
@given(doc=datasource_docs, path=st.text(max_size=300) | st.just("good.csv"), name=st.text(max_size=300))
def test_any_datasource_path_or_data_name_resolves_loads_or_fails_cleanly(
    doc: dict[str, Any], path: str, name: str, fuzz_project: Path, plexus_train: Callable[[str], Trial]
) -> None:
    (fuzz_project / "datasources" / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    (fuzz_project / "datasources" / "src.yaml").write_text(dump({**doc, "path": path}), encoding="utf-8")
    for data in ("src", name):
        assume(not data.startswith("s3://"))  # S3 locations need AWS: covered by the SageMaker tests
        code, err, dataset = plexus_train(data)
        if dataset is not None:
            assert_trainable(dataset, dataset.source)
        else:
            assert code == 1 and err.startswith("error: ") and "Traceback" not in err, err
            assert not (fuzz_project / "models").exists()


def test_a_column_name_with_a_line_break_is_shown_on_the_one_error_line(fuzz_project: Path, plexus_train) -> None:
    (fuzz_project / "broken.csv").write_text('"te\nxt",label\nhello,a\n', encoding="utf-8")
    code, err, _ = plexus_train("broken.csv")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "the columns are: 'te\\nxt', label" in err


def test_a_data_name_too_long_for_the_file_system_is_a_clean_error(fuzz_project: Path, plexus_train) -> None:
    code, err, _ = plexus_train("x" * 5000 + ".csv")
    assert code == 1 and "no such data file" in err and len(err.strip().splitlines()) == 1
    code, err, _ = plexus_train("x" * 5000)
    assert code == 1 and err.startswith("error: no data source")


def test_a_label_that_looks_like_rich_markup_is_printed_not_parsed(fuzz_project: Path, plexus_train) -> None:
    (fuzz_project / "markup.csv").write_text("text,label\nhello,[/]\nworld,[/]\nagain,b\nmore,b\n", encoding="utf-8")
    code, err, dataset = plexus_train("markup.csv")
    assert dataset is not None and dataset.class_counts() == {"[/]": 2, "b": 2}, (code, err)


def test_a_text_with_a_lone_carriage_return_survives_the_csv_a_training_job_reads() -> None:
    dataset = to_dataset(*read_csv(b'text,label\n"a\rb",x\nc,x\nd,y\ne,y\n', "d.csv"), "d.csv", "text", "label")
    again = to_dataset(*read_csv(dataset.to_csv(), "again"), "again", "text", "label")
    assert again.texts == ("a\rb", "c", "d", "e") and again.labels == dataset.labels
