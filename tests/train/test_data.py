"""Bad data fails with a clear message before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from plexus_train import datasources
from plexus_train.container.dataset import read_csv, to_dataset
from plexus_train.container.errors import DataError
from tests.train.helpers import plexus_cli


def dataset_from(text: str):
    columns, rows = read_csv(text.encode(), "data.csv")
    return to_dataset(columns, rows, "data.csv", "text", "label")


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("text,other\nhello,a\n", "no column 'label'; the columns are: text, other"),
        ("text,label\n", "no data rows"),
        ("text,label\nhello,a\nworld,a\n", r"a single class \('a'\)"),
        ("text,label\nhello,a\n,b\n3.5,b\n", r"must hold text; 2 row\(s\) are empty, missing or numbers \(rows 3, 4\)"),
        ("text,label\nhello,a\nworld,\n", r"column 'label' is empty in 1 row\(s\) \(3\)"),
        ("text,label\nhello,a\nworld,a\nbye,b\n", "class\\(es\\) 'b' have one example"),
    ],
)
def test_bad_data_is_refused_with_a_reason(csv: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        dataset_from(csv)


def test_good_data_keeps_texts_and_labels_in_order() -> None:
    dataset = dataset_from("text,label\nhello,a\nworld,b\nagain,a\nmore,b\n")
    assert dataset.texts == ("hello", "world", "again", "more")
    assert dataset.class_counts() == {"a": 2, "b": 2}
    assert dataset.to_csv().decode() == "text,label\nhello,a\nworld,b\nagain,a\nmore,b\n"


def test_data_source_by_name_and_by_path(project: Path) -> None:
    named = datasources.resolve("tickets")
    assert named.location == str(project / "datasources" / "tickets.csv")
    assert (named.format, named.text_column, named.label_column) == ("csv", "text", None)
    by_path = datasources.resolve("datasources/tickets.csv")
    assert by_path.location == "datasources/tickets.csv"
    assert len(datasources.load(by_path, "text", "topic").texts) == 240
    with pytest.raises(datasources.PlexusError, match=r"no data source 'nope'.*known: tickets"):
        datasources.resolve("nope")


def test_cli_refuses_bad_data_before_training(project: Path) -> None:
    (project / "one-class.csv").write_text("text,topic\nhello there,billing\nagain here,billing\n")
    result = plexus_cli(
        "train", "--scorecard", "test-scorecard-v-1-0", "--score", "ticket-topic", "--data", "one-class.csv",
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: one-class.csv: column 'topic' has a single class ('billing'); a classifier needs 2+"
    )
    assert not (project / "models").exists()
