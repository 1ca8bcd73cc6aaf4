"""A project directory as Plexus writes it (tests/train/fixtures/plexus-project): per-score files with the API's
metadata, whole scorecards with scores as a list, a mapping and in sections, mixed classes. Every BERTClassifier
score trains as it is; every other class is one line; a broken sibling blocks nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from plexus_infra.core.errors import ManifestError, PlexusError
from plexus_train import datasources
from plexus_train.container.errors import DataError
from plexus_train.scorecards import UntrainableScore, find_score, find_scorecard
from tests.train.helpers import plexus_cli

SELECTQUOTE = "SelectQuote HCS Medium-Risk"
# Every BERTClassifier score of the fixture, by scorecard, with the --data it needs (its data: names only the
# Plexus service) and the label column its data gives it.
TRAINABLE = [
    (SELECTQUOTE, "Call Outcome", None, "Call Outcome"),
    ("Call Center QA", "Call Intent", "data/transcripts.csv", "Call Intent"),
    ("Call Center QA", "Customer Mood", "data/transcripts.csv", "Sentiment"),
    ("Test Scorecard", "Greeting", None, "Greeting Valid"),
    ("Test Scorecard", "Topic", None, "Call Outcome"),
    ("Support QA", "Ticket Sentiment", None, "Sentiment"),
]
OTHERS = [
    (SELECTQUOTE, "Agent Misrepresentation", "a LangGraphScore"),
    ("Call Center QA", "IVR Answered", "a DeepLearningSemanticClassifier"),
    ("Call Center QA", "Do Not Call Request", "an ExplainableClassifier"),
    ("Test Scorecard", "TestScore", "a Score"),
    ("Support QA", "Resolution Offered", "a LangGraphScore"),
]


@pytest.mark.parametrize(("scorecard", "score", "data", "label"), TRAINABLE)
def test_every_bert_score_trains_as_plexus_wrote_it(plexus_project: Path, plexus, scorecard, score, data, label):
    argv = ["train", "--scorecard-name", scorecard, "--score-name", score, "--epochs", "1"]
    ran = plexus(*argv, *(["--data", data] if data else []))
    assert ran.code == 0, ran.err
    found = find_score(scorecard, score)
    config = json.loads((plexus_project / "models" / found.path / "config.json").read_text())
    assert (config["scorecard"], config["score"]) == (scorecard, score)
    assert config["hyperparameters"]["label_column"] == label
    # Training ends with the report on the validation split it held out.
    report = ran.out.strip().splitlines()[-1].removeprefix("validation report: ")
    assert report.startswith(f"models/{found.path}/evaluations/") and (plexus_project / report).is_file()


@pytest.mark.parametrize(("scorecard", "score", "what"), OTHERS)
def test_every_other_class_is_one_line_naming_it(plexus_project: Path, scorecard: str, score: str, what: str) -> None:
    result = plexus_cli("train", "--scorecard", scorecard, "--score", score, cwd=plexus_project)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {score!r} is {what}; plexus train trains BERTClassifier scores\n"


def test_the_per_score_layout_keeps_plexus_names_and_metadata(plexus_project: Path) -> None:
    score = find_score("selectquote-hcs-medium-risk", "call-outcome")
    assert (score.scorecard_name, score.name, score.path) == (SELECTQUOTE, "Call Outcome", score.path)
    assert score.path == "selectquote-hcs-medium-risk/call-outcome"
    assert score.source == f"scorecards/{SELECTQUOTE}/Call Outcome.yaml"
    assert (score.config.dropout, score.config.weight_decay, score.config.early_stopping_patience) == (0.1, 0.01, 2)
    assert (score.deployment.type, score.deployment.memory_mb, score.deployment.max_concurrency) == (
        "serverless",
        2048,
        5,
    )


def test_a_mapping_of_scores_names_each_by_its_key_and_gives_the_scorecard_defaults(plexus_project: Path) -> None:
    intent = find_score("Call Center QA", "Call Intent")
    assert (intent.scorecard_key, intent.key, intent.text_column) == ("contactics", "call-intent", "Transcription")
    # Plexus's schedule and windows, in its own names.
    config = intent.config
    assert (config.schedule, config.warmup_learning_rate, config.warmup_epochs, config.plateau_epochs) == (
        "plateau",
        0.0001,
        1,
        2,
    )
    assert (config.learning_rate, config.learning_rate_decay, config.max_windows) == (0.002, 0.75, 4)
    mood = find_score("contactics", "customer-mood")
    assert (mood.config.epochs, mood.config.dropout, mood.config.schedule) == (4, 0.05, "linear")
    assert (mood.config.max_windows, mood.config.start_from_end, mood.label_score_name) == (1, True, "Sentiment")


def test_a_score_found_in_sections(plexus_project: Path) -> None:
    card = find_scorecard("test_scorecard")
    assert [entry.name for entry in card.entries] == ["TestScore", "Greeting", "Topic"]
    assert find_score("Test Scorecard", "greeting").label_field == "Valid"


def test_a_broken_sibling_file_blocks_nothing_and_is_named_when_it_is_what_was_asked_for(plexus_project: Path) -> None:
    assert find_score(SELECTQUOTE, "Call Outcome").name == "Call Outcome"
    with pytest.raises(ManifestError, match=re.escape(f"scorecards/{SELECTQUOTE}/Broken.yaml:3:1: invalid YAML")):
        find_score(SELECTQUOTE, "Broken")


def test_a_broken_sibling_score_in_the_same_file_blocks_nothing(plexus_project: Path) -> None:
    path = plexus_project / "scorecards" / "call-center-qa.yaml"
    text = path.read_text().replace("    top_n_features: 50000\n", "    top_n_features: 50000\n    top_n_features: 9\n")
    path.write_text(text.replace("    id: 5678\n", "    id: 5678\n    batch_size: many\n"))
    assert find_score("Call Center QA", "Call Intent").config.max_windows == 4


def test_only_the_score_asked_for_is_checked_but_it_is_checked_strictly(plexus_project: Path) -> None:
    path = plexus_project / "scorecards" / "call-center-qa.yaml"
    path.write_text(path.read_text().replace("    epochs: 4\n", "    epochs: 4\n    dropuot: 0.1\n"))
    with pytest.raises(ManifestError) as caught:
        find_score("Call Center QA", "Customer Mood")
    (problem,) = caught.value.problems
    assert str(problem).startswith(
        'scorecards/call-center-qa.yaml:105:5: scores["Customer Mood"].dropuot: unknown field'
    )
    assert find_score("Call Center QA", "Call Intent").name == "Call Intent"


def test_train_without_score_trains_every_trainable_one_and_ends_with_one_table(plexus_project: Path, plexus) -> None:
    ran = plexus("train", "--scorecard", "Test Scorecard", "--epochs", "1")
    assert ran.code == 0, ran.err
    assert "skipped: 'TestScore' is a Score; plexus train trains BERTClassifier scores" in ran.out
    table = ran.out[ran.out.index("Test Scorecard\n") :]
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert [re.split(r"\s*│\s*", row)[1:3] for row in rows] == [
        ["TestScore", "skipped"],
        ["Greeting", "trained"],
        ["Topic", "trained"],
    ]
    assert re.search(r"│ Greeting\s+│ trained\s+│ 240\s+│ 2\s+│ \d\.\d{3}\s+│ models/test_scorecard/greeting", table)
    assert (plexus_project / "models" / "test_scorecard" / "topic" / "config.json").is_file()


def test_train_without_score_exits_1_when_any_failed_and_names_them(plexus_project: Path, plexus) -> None:
    ran = plexus("train", "--scorecard", SELECTQUOTE, "--epochs", "1")
    assert ran.code == 1
    assert re.search(r"│ Call Outcome\s+│ trained", ran.out) and re.search(r"│ Broken\s+│ failed", ran.out)
    assert ran.err == f"error: 1 of 3 scores of {SELECTQUOTE!r} failed: Broken\n"
    # Plexus's service data is a failure too (the table says why), and the other scores still train.
    ran = plexus("train", "--scorecard", "Call Center QA", "--epochs", "1")
    assert ran.code == 1 and "failed: Call Intent: scorecards/call-center-qa.yaml:80:14: data.class:" in ran.out
    assert ran.err == "error: 2 of 4 scores of 'Call Center QA' failed: Call Intent, Customer Mood\n"


def test_data_from_the_plexus_service_is_one_line_and_data_supplies_it(plexus_project: Path) -> None:
    result = plexus_cli("train", "--scorecard", "Call Center QA", "--score", "Call Intent", cwd=plexus_project)
    assert result.returncode == 1
    assert result.stderr == (
        "error: scorecards/call-center-qa.yaml:80:14: data.class: FeedbackItems reads from the Plexus service, "
        "which plexus train cannot reach; --data NAME|PATH supplies the data\n"
    )
    score = find_score("Call Center QA", "Call Intent")
    assert datasources.for_score(score, "data/transcripts.csv").location == "data/transcripts.csv"


def test_a_data_mapping_with_a_path_loads_like_a_data_source(plexus_project: Path) -> None:
    score = find_score("Support QA", "Ticket Sentiment")
    source = datasources.for_score(score)
    assert (source.location, source.format, source.label_column) == ("data/calls.csv", "csv", "Sentiment")
    # --data always wins over data:
    assert datasources.for_score(score, "data/transcripts.csv").location == "data/transcripts.csv"


@pytest.mark.parametrize(
    ("columns", "settings", "read"),
    [
        ("text,label,Greeting", {}, "label"),
        ("text,Greeting,Sentiment", {"label_score_name": "Sentiment"}, "Greeting"),
        ("text,Sentiment", {"label_score_name": "Sentiment"}, "Sentiment"),
        ("text,Greeting Valid,Greeting", {"label_field": "Valid"}, "Greeting Valid"),
        ("text,Mood Valid", {"label_score_name": "Mood", "label_field": "Valid"}, "Mood Valid"),
        ("text,label,Other", {"label_column": "Other"}, "Other"),
    ],
)
def test_the_label_column_follows_plexus_naming(plexus_project: Path, columns: str, settings: dict, read: str) -> None:
    from dataclasses import replace

    (plexus_project / "labels.csv").write_text(
        columns
        + "\n"
        + "".join(f"hello {i}," + ",".join(["a" if i % 2 else "b"] * columns.count(",")) + "\n" for i in range(6))
    )
    score = replace(find_score("Test Scorecard", "Greeting"), **{"label_field": None, **settings})
    source = datasources.resolve("labels.csv")
    text, labels = datasources.columns(score, source)
    assert datasources.load(source, text, labels).label_column == read


def test_a_missing_label_column_lists_what_was_tried_and_the_columns_there(plexus_project: Path) -> None:
    (plexus_project / "other.csv").write_text("text,Outcome\nhello,a\nthere,b\n")
    score = find_score("Test Scorecard", "Greeting")
    text, labels = datasources.columns(score, datasources.resolve("other.csv"))
    with pytest.raises(DataError) as caught:
        datasources.load(datasources.resolve("other.csv"), text, labels)
    assert str(caught.value) == (
        "other.csv: no label column: none of 'label', 'Greeting Valid' (set label_column); "
        "the columns are: text, Outcome"
    )


def test_number_of_classes_must_match_the_data(plexus_project: Path, plexus) -> None:
    path = plexus_project / "scorecards" / "test_scorecard.yaml"
    path.write_text(
        path.read_text().replace(
            "        label_column: Call Outcome\n", "        label_column: Call Outcome\n        number_of_classes: 2\n"
        )
    )
    ran = plexus("train", "--scorecard", "Test Scorecard", "--score", "Topic")
    assert ran.code == 1
    assert ran.err == (
        "error: data/calls.csv: column 'Call Outcome' holds 3 classes, but score 'Topic' says number_of_classes: 2 "
        "(scorecards/test_scorecard.yaml)\n"
    )


@pytest.mark.parametrize(
    ("alias", "documented", "value", "attribute"),
    [
        ("dropout", "dropout_rate", 0.2, "dropout"),
        ("epochs", "number_of_epochs", 7, "epochs"),
        ("early_stopping_patience", "early_stop_patience", 4, "early_stopping_patience"),
        ("weight_decay", "l2_regularization_strength", 0.03, "weight_decay"),
        ("plateau_learning_rate", "learning_rate", 0.004, "learning_rate"),
    ],
)
def test_each_spelling_is_one_setting_and_both_at_once_are_refused_naming_both(
    plexus_project: Path, alias: str, documented: str, value: float, attribute: str
) -> None:
    folder = plexus_project / "scorecards" / "Spellings"
    folder.mkdir()
    base = "name: S\nclass: BERTClassifier\n"
    for spelling in (alias, documented):
        (folder / "S.yaml").write_text(f"{base}{spelling}: {value}\n")
        assert getattr(find_score("Spellings", "S").config, attribute) == value
    (folder / "S.yaml").write_text(f"{base}{documented}: {value}\n{alias}: {value}\n")
    with pytest.raises(ManifestError) as caught:
        find_score("Spellings", "S")
    assert [str(p) for p in caught.value.problems] == [
        f"scorecards/Spellings/S.yaml:4:1: {alias}: {documented} (line 3) and {alias} are one setting ({documented}); "
        "keep one"
    ]


def test_deployment_spellings_and_where_a_score_is_served_are_one_setting_each(plexus_project: Path) -> None:
    folder = plexus_project / "scorecards" / "Spellings"
    folder.mkdir()
    base = "name: S\nclass: BERTClassifier\n"
    (folder / "S.yaml").write_text(f"{base}deployment:\n  type: realtime\n  target_invocations_per_instance: 7\n")
    assert (
        find_score("Spellings", "S").deployment.type,
        find_score("Spellings", "S").deployment.target_invocations,
    ) == (
        "realtime",
        7,
    )
    (folder / "S.yaml").write_text(f"{base}training:\n  deployment_target: sagemaker_realtime\n")
    assert find_score("Spellings", "S").deployment.type == "realtime"
    (folder / "S.yaml").write_text(f"{base}training:\n  deployment_target: local\ndeployment:\n  type: serverless\n")
    with pytest.raises(ManifestError, match=re.escape(
        "S.yaml:6:3: deployment.type: deployment_target (line 4) and type are where the score is served, one setting"
    )):  # fmt: skip
        find_score("Spellings", "S")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "training:\n  type: llm-finetune\n",
            "S.yaml:4:9: training.type: LLM fine-tuning (llm-finetune) is not done by plexus train, "
            "which trains type ml",
        ),
        (
            "deployment:\n  min_instances: 3\n  max_instances: 2\n",
            "S.yaml:5:18: deployment.max_instances: 2 is below min_instances (3)",
        ),
        (
            "warmup_ratio: 0.1\nnumber_of_warmup_epochs: 1\n",
            "S.yaml:4:1: number_of_warmup_epochs: warmup_ratio (line 3) and number_of_warmup_epochs are two "
            "learning-rate schedules",
        ),
        ("data:\n  format: csv\n", "S.yaml:4:3: data: needs 'path' or 'class'"),
    ],
)
def test_plexus_settings_this_tool_cannot_honour_are_one_located_line(
    plexus_project: Path, extra: str, message: str
) -> None:
    folder = plexus_project / "scorecards" / "Spellings"
    folder.mkdir()
    (folder / "S.yaml").write_text(f"name: S\nclass: BERTClassifier\n{extra}")
    with pytest.raises(ManifestError) as caught:
        find_score("Spellings", "S")
    assert len(caught.value.problems) == 1 and message in str(caught.value.problems[0]), caught.value.problems


def test_a_mapping_entry_whose_name_differs_from_its_key_is_refused(plexus_project: Path) -> None:
    (plexus_project / "scorecards" / "m.yaml").write_text(
        "name: M\nscores:\n  Alpha:\n    name: Beta\n    class: BERTClassifier\n"
    )
    with pytest.raises(ManifestError, match=re.escape("m.yaml:4:11: scores.Alpha.name: differs from the score's key")):
        find_score("M", "Alpha")


def test_train_flags_override_and_fresh_removes_the_old_model_first(plexus_project: Path, plexus) -> None:
    old = plexus_project / "models" / "test_scorecard" / "topic"
    old.mkdir(parents=True)
    (old / "left-behind.txt").write_text("an earlier run's file")
    argv = ["train", "--scorecard", "Test Scorecard", "--score", "Topic", "--epochs", "1", "--learning-rate", "0.003"]
    ran = plexus(*argv, "--fresh", "--verbose")
    assert ran.code == 0, ran.err
    assert "--fresh: removed models/test_scorecard/topic/, the model an earlier run left" in ran.out
    assert not (old / "left-behind.txt").exists() and (old / "config.json").is_file()
    assert re.search(r"epoch 1, step 1/6: loss \d\.\d{4}, lr 3\.00e-03", ran.out), ran.out
    config = json.loads((old / "config.json").read_text())["hyperparameters"]
    assert (config["learning_rate"], config["epochs"]) == (0.003, 1)


def test_a_score_that_names_no_data_says_how_to_give_it(plexus_project: Path) -> None:
    folder = plexus_project / "scorecards" / "Spellings"
    folder.mkdir()
    (folder / "S.yaml").write_text("name: S\nclass: BERTClassifier\n")
    result = plexus_cli("train", "--scorecard", "Spellings", "--score", "S", cwd=plexus_project)
    assert result.stderr == (
        "error: scorecards/Spellings/S.yaml: score 'S' names no data; give --data NAME|PATH or set data:\n"
    )


def test_an_untrainable_scorecard_is_an_error(plexus_project: Path) -> None:
    folder = plexus_project / "scorecards" / "Only LLM"
    folder.mkdir()
    (folder / "A.yaml").write_text("name: A\nclass: LangGraphScore\ngraph: []\n")
    result = plexus_cli("train", "--scorecard", "Only LLM", cwd=plexus_project)
    assert result.returncode == 1
    assert result.stderr == "error: scorecard 'Only LLM' has no BERTClassifier score to train\n"


def test_unknown_scorecards_still_say_what_exists(plexus_project: Path) -> None:
    with pytest.raises(PlexusError, match=r"no scorecard 'Nope'.*found: Call Center QA, SelectQuote HCS Medium-Risk"):
        find_scorecard("Nope")
    with pytest.raises(UntrainableScore):
        find_score("contactics", "ivr-answered")
