"""Scorecards and scores: both layouts, Plexus's key rule, schema errors with file:line:column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plexus_infra.core.errors import ManifestError, PlexusError
from plexus_train.scorecards import find_score, key_of
from tests.train.helpers import plexus_cli


def test_key_rule_matches_plexus() -> None:
    assert key_of("A Test Scorecard v 1.0") == "a-test-scorecard-v-1-0"
    assert key_of("  Ticket -- Topic! ") == "ticket-topic"
    assert key_of("snake_case stays") == "snake_case-stays"


@given(st.text())
def test_key_is_idempotent_and_trimmed(name: str) -> None:
    key = key_of(name)
    assert key_of(key) == key
    assert not key.startswith("-") and not key.endswith("-")
    assert key == key.lower()


def test_whole_scorecard_layout_found_by_name_or_key(project: Path) -> None:
    by_name = find_score("Test Scorecard v 1.0", "Ticket Topic")
    by_key = find_score("test-scorecard-v-1-0", "ticket-topic")
    assert by_name == by_key
    assert by_name.path == "test-scorecard-v-1-0/ticket-topic"
    assert by_name.config.epochs == 2 and by_name.config.trainable_layers == 2
    assert (by_name.deployment.type, by_name.deployment.memory_mb, by_name.deployment.max_concurrency) == (
        "serverless",
        4096,
        10,
    )


def test_per_score_layout_and_explicit_key_wins(project: Path) -> None:
    folder = project / "scorecards" / "Call Quality"
    folder.mkdir()
    (folder / "Agent Greeting.yaml").write_text("name: Agent Greeting\nkey: greeting\nclass: BERTClassifier\n")
    score = find_score("call-quality", "Agent Greeting")
    assert (score.scorecard_name, score.scorecard_key, score.key) == ("Call Quality", "call-quality", "greeting")
    assert find_score("Call Quality", "greeting") == score


def test_rates_in_exponent_form_are_numbers_as_yaml_1_2_reads_them(project: Path) -> None:
    """PyYAML reads `2e-5` (no dot) as a string under YAML 1.1; people write rates that way."""
    folder = project / "scorecards" / "Call Quality"
    folder.mkdir()
    (folder / "Tone.yaml").write_text(
        "name: Tone\nclass: BERTClassifier\nlearning_rate: 2e-5\nhead_learning_rate: 1E-3\nwarmup_ratio: '1e-1'\n"
    )
    with pytest.raises(ManifestError, match=r"Tone.yaml:5:15: warmup_ratio: expected number, got a string"):
        find_score("Call Quality", "Tone")  # a quoted one stays a string
    (folder / "Tone.yaml").write_text(
        "name: Tone\nclass: BERTClassifier\nlearning_rate: 2e-5\nhead_learning_rate: 1E-3\n"
    )
    config = find_score("Call Quality", "Tone").config
    assert (config.learning_rate, config.head_learning_rate) == (2e-5, 1e-3)


def test_unknown_score_lists_what_exists(project: Path) -> None:
    with pytest.raises(PlexusError, match="has no score 'Nope'; it has: Ticket Topic"):
        find_score("Test Scorecard v 1.0", "Nope")
    with pytest.raises(PlexusError, match=r"no scorecard 'Missing'.*found: Test Scorecard v 1.0"):
        find_score("Missing", "Ticket Topic")


def test_bad_score_yaml_reports_every_problem_with_its_line(project: Path) -> None:
    (project / "scorecards" / "bad.yaml").write_text(
        "name: Bad\n"
        "scores:\n"
        "  - name: Broken\n"
        "    class: BERTClassifier\n"
        "    number_of_epochs: many\n"
        "    colour: blue\n"
        "    deployment:\n"
        "      memory_mb: 1000\n"
    )
    with pytest.raises(ManifestError) as caught:
        find_score("Bad", "Broken")
    shown = [str(p) for p in caught.value.problems]
    assert any(s.startswith("scorecards/bad.yaml:5:23: scores[0].number_of_epochs: expected integer") for s in shown)
    assert any(s.startswith("scorecards/bad.yaml:6:5: scores[0].colour: unknown field") for s in shown)
    assert any(s.startswith("scorecards/bad.yaml:8:18: scores[0].deployment.memory_mb: must be one of") for s in shown)


def test_cli_prints_schema_errors_one_per_line_without_traceback(project: Path) -> None:
    (project / "scorecards" / "bad.yaml").write_text("name: Bad\nscores:\n  - name: Broken\n    class: 5\n")
    result = plexus_cli("train", "--scorecard", "Bad", "--score", "Broken", cwd=project)
    assert result.returncode == 1
    assert result.stderr.strip() == 'error: scorecards/bad.yaml:4:12: scores[0].class: must be "BERTClassifier"; got 5'
    assert "Traceback" not in result.stderr


def test_a_score_of_another_class_is_one_line_naming_its_class(project: Path) -> None:
    (project / "scorecards" / "svm.yaml").write_text("name: Bad\nscores:\n  - name: Broken\n    class: SVMClassifier\n")
    result = plexus_cli("train", "--scorecard", "Bad", "--score", "Broken", cwd=project)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: 'Broken' is a SVMClassifier; plexus train trains BERTClassifier scores\n"


def test_duplicate_keys_are_errors_not_silent_overrides(project: Path) -> None:
    (project / "scorecards" / "dup.yaml").write_text(
        "name: Dup\nscores:\n  - name: A\n    class: BERTClassifier\n    batch_size: 8\n    batch_size: 9\n"
    )
    with pytest.raises(ManifestError, match=r"dup.yaml:6:5: scores\[0\].batch_size: duplicate key"):
        find_score("Dup", "A")


def test_a_pytorch_image_too_old_for_the_packaged_code_is_refused_at_load(project: Path) -> None:
    (project / "scorecards" / "old.yaml").write_text(
        "name: Old\nscores:\n  - name: A\n    class: BERTClassifier\n    training:\n      framework_version: '2.5'\n"
    )
    with pytest.raises(ManifestError, match=r"old.yaml:6:26: scores\[0\].training.framework_version: PyTorch 2.5"):
        find_score("Old", "A")


BROKEN = "name: Broken\nclass: [BERTClassifier\n"  # an unclosed flow sequence: the file does not parse


def test_an_unparsable_file_blocks_no_other_lookup(project: Path) -> None:
    (project / "scorecards" / "Bad Card").mkdir()
    (project / "scorecards" / "Bad Card" / "Broken.yaml").write_text(BROKEN)
    (project / "scorecards" / "junk.yaml").write_text("name: Junk\nscores: {\n")
    (project / "scorecards" / "dup.yaml").write_text("name: Dup\nname: Dup\nscores: []\n")  # parses, invalid
    assert find_score("Test Scorecard v 1.0", "Ticket Topic").path == "test-scorecard-v-1-0/ticket-topic"


def test_an_unparsable_file_is_named_when_what_was_asked_for_is_not_found(project: Path) -> None:
    (project / "scorecards" / "Bad Card").mkdir()
    (project / "scorecards" / "Bad Card" / "Broken.yaml").write_text(BROKEN)
    unreadable = "scorecards/Bad Card/Broken.yaml could not be read: line 3, column 1: invalid YAML: "
    with pytest.raises(PlexusError) as caught:
        find_score("Missing", "Ticket Topic")
    assert str(caught.value).startswith(
        f"no scorecard 'Missing' under scorecards/; found: Bad Card, Test Scorecard v 1.0 ({unreadable}"
    )
    assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(PlexusError, match=re.escape(f"has no score 'Other'; it has: none ({unreadable}")):
        find_score("Bad Card", "Other")


def test_the_unparsable_file_asked_for_reports_its_problems_with_file_and_line(project: Path) -> None:
    (project / "scorecards" / "Bad Card").mkdir()
    (project / "scorecards" / "Bad Card" / "Broken.yaml").write_text("class: [BERTClassifier\n")
    with pytest.raises(ManifestError, match=r"^scorecards/Bad Card/Broken.yaml:2:1: invalid YAML"):
        find_score("Bad Card", "broken")  # by its path: the file's name is the score's
    # A whole-scorecard file whose name comes before its first problem is the one asked for by that name.
    (project / "scorecards" / "cards.yaml").write_text("name: Broken Card\nscores:\n  - name: A\n    class: [x\n")
    with pytest.raises(ManifestError, match=r"^scorecards/cards.yaml:5:1: invalid YAML"):
        find_score("Broken Card", "A")


def test_a_duplicate_key_elsewhere_blocks_nothing_but_is_reported_for_its_own_score(project: Path) -> None:
    (project / "scorecards" / "dup.yaml").write_text(
        "name: Dup\nscores:\n  - name: A\n    class: BERTClassifier\n    seed: 1\n    seed: 2\n"
    )
    assert find_score("Test Scorecard v 1.0", "Ticket Topic").name == "Ticket Topic"
    with pytest.raises(ManifestError, match=r"^scorecards/dup.yaml:6:5: scores\[0\].seed: duplicate key"):
        find_score("Dup", "A")


def test_duplicate_scorecard_names_name_their_files(project: Path) -> None:
    (project / "scorecards" / "again.yaml").write_text("name: Test Scorecard v 1.0\nscores: []\n")
    (project / "scorecards" / "Test Scorecard v 1.0").mkdir()
    with pytest.raises(PlexusError) as caught:
        find_score("Test Scorecard v 1.0", "Ticket Topic")
    assert str(caught.value) == (
        "3 scorecards under scorecards/ match 'Test Scorecard v 1.0': scorecards/again.yaml, scorecards/test.yaml, "
        "scorecards/Test Scorecard v 1.0/; rename or key one"
    )


def test_duplicate_score_names_name_their_files_and_lines(project: Path) -> None:
    folder = project / "scorecards" / "Call Quality"
    folder.mkdir()
    for file in ("a.yaml", "b.yaml"):
        (folder / file).write_text("name: Greeting\nclass: BERTClassifier\n")
    with pytest.raises(
        PlexusError, match=re.escape("has 2 scores matching 'Greeting': scorecards/Call Quality/a.yaml")
    ):
        find_score("Call Quality", "Greeting")
    (project / "scorecards" / "two.yaml").write_text(
        "name: Two\nscores:\n  - name: A\n    class: BERTClassifier\n  - name: A\n    class: BERTClassifier\n"
    )
    with pytest.raises(
        PlexusError, match=re.escape("2 scores matching 'A': scorecards/two.yaml:3, scorecards/two.yaml:5")
    ):
        find_score("Two", "A")


def test_cli_names_the_unparsable_file_in_one_line(project: Path) -> None:
    (project / "scorecards" / "Bad Card").mkdir()
    (project / "scorecards" / "Bad Card" / "Broken.yaml").write_text(BROKEN)
    result = plexus_cli("train", "--scorecard", "X", "--score", "Y", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no scorecard 'X' under scorecards/; found: Bad Card, Test Scorecard")
    assert "(scorecards/Bad Card/Broken.yaml could not be read: line 3" in result.stderr
    assert len(result.stderr.splitlines()) == 1
