"""Labelled texts, checked before any training starts: on the host before uploading, in a job before training.

Every check names the file, the column and the first offending rows, so bad data fails in a second with a
clear message instead of minutes into a training job.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plexus_train.container.errors import DataError

MAX_SHOWN_ROWS = 5
MAX_SHOWN_COLUMNS = 20
MAX_SHOWN_NAME = 60


@dataclass(frozen=True)
class Dataset:
    """+ texts, labels: one per example, both strings
    + source: where the data came from, for messages
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str
    text_column: str
    label_column: str

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def to_csv(self) -> bytes:
        """The examples as UTF-8 CSV with the dataset's own column names (what a training job reads)."""
        out = io.StringIO()
        plain = csv.writer(out, lineterminator="\n")
        # csv quotes only the line terminator's characters: a lone "\r" left bare would read back as a row break.
        quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for row in [(self.text_column, self.label_column), *zip(self.texts, self.labels, strict=True)]:
            (quoted if any("\r" in value for value in row) else plain).writerow(row)
        return out.getvalue().encode("utf-8")


def read_csv(data: bytes, source: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of UTF-8 CSV bytes (a BOM is allowed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not UTF-8 text (byte offset {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise DataError(f"{source}: invalid CSV at line {reader.line_num}: {exc}") from None
    return list(reader.fieldnames or []), rows


def to_dataset(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], source: str, text_column: str, label_column: str
) -> Dataset:
    """Check the rows and keep the two columns; raise DataError on anything that cannot train.

    Checks: those of `labelled_dataset`, then at least two classes, each with at least two examples (so the
    stratified split can put one on each side).
    """
    dataset = labelled_dataset(columns, rows, source, text_column, label_column)
    labels = dataset.labels
    counts = Counter(labels)
    if len(counts) < 2:
        raise DataError(f"{source}: column {label_column!r} has a single class ({labels[0]!r}); a classifier needs 2+")
    rare = sorted(label for label, n in counts.items() if n < 2)
    if rare:
        raise DataError(
            f"{source}: class(es) {', '.join(map(repr, rare))} have one example; each class needs at least 2"
        )
    return dataset


def labelled_dataset(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], source: str, text_column: str, label_column: str
) -> Dataset:
    """The rows as labelled texts, for any use of them (training adds its class rules: `to_dataset`; an
    evaluation takes any classes); raise DataError when a row has no text or no label.

    Checks: both columns exist, there are rows, every text is a non-empty string that is not just a number,
    every label is present.
    """
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        raise DataError(
            f"{source}: no column {', '.join(map(repr, missing))}; the columns are: {shown_columns(columns)}"
        )
    rows = list(rows)
    if not rows:
        raise DataError(f"{source}: no data rows")
    texts, labels, bad_texts, bad_labels = [], [], [], []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        text, label = row.get(text_column), row.get(label_column)
        if not _is_text(text):
            bad_texts.append(number)
        if label is None or str(label).strip() == "":
            bad_labels.append(number)
        texts.append(text)
        labels.append(str(label).strip() if label is not None else "")
    if bad_texts:
        raise DataError(
            f"{source}: column {text_column!r} must hold text; {len(bad_texts)} row(s) are empty, missing or "
            f"numbers (rows {shown_rows(bad_texts)})"
        )
    if bad_labels:
        raise DataError(
            f"{source}: column {label_column!r} is empty in {len(bad_labels)} row(s) ({shown_rows(bad_labels)})"
        )
    return Dataset(tuple(texts), tuple(labels), source, text_column, label_column)


def shown_columns(columns: Sequence[Any]) -> str:
    """A file's columns for a one-line message: the first MAX_SHOWN_COLUMNS, each plain or quoted (`_column`)."""
    shown = ", ".join(map(_column, columns[:MAX_SHOWN_COLUMNS]))
    shown += ", …" if len(columns) > MAX_SHOWN_COLUMNS else ""
    return shown or "none"


def _is_text(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _column(name: Any) -> str:
    """A header cell as it reads in a one-line message: plain when printable and short, else quoted/clipped."""
    text = str(name)
    if len(text) > MAX_SHOWN_NAME:
        text = text[: MAX_SHOWN_NAME - 1] + "…"
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def shown_rows(numbers: list[int]) -> str:
    """Row numbers for a one-line message: the first MAX_SHOWN_ROWS, then "…".

    Example: `shown_rows([2, 3]) == "2, 3"`
    """
    shown = ", ".join(map(str, numbers[:MAX_SHOWN_ROWS]))
    return shown + (", …" if len(numbers) > MAX_SHOWN_ROWS else "")
