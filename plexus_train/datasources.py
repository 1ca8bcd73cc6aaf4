"""Where a score's data comes from: `--data NAME|PATH`, else the score's `data:`.

A name is `datasources/NAME.yaml` (a CSV or Parquet file, local or on S3, and its columns); a path to a
.csv/.parquet file (or an s3:// URI) is that file. A score's `data:` may also be Plexus's data mapping: one with a
`path` (and optionally `format`, `text_column`, `label_column`) loads that file (a relative path from the project
directory); one with only a `class` (FeedbackItems, DatasetCache, AWSDataLakeCache, ...) needs the Plexus service,
so it cannot be loaded here and `--data` must supply the data.

Columns: the text column is the score's (or its scorecard's `transcript_column`), else the data source's, else
`text`. The label column is the score's, else the data source's; when neither names one, the first present of
`label`, the score's name and its `label_score_name` (Plexus exports a score's labels in a column named after the
score), each followed by ` {label_field}` when the score sets one, as Plexus names them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.errors import ManifestError, PlexusError
from plexus_infra.core.yamldoc import load_yaml
from plexus_train.container.dataset import Dataset, labelled_dataset, read_csv, shown_columns, to_dataset
from plexus_train.container.errors import DataError
from plexus_train.locations import is_s3_uri, split_s3_uri
from plexus_train.schemas import check

if TYPE_CHECKING:
    from plexus_train.scorecards import Score

DATASOURCES_DIR = Path("datasources")
FORMATS = {".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class DataSource:
    """+ location: local path or s3://bucket/key
    + format: csv or parquet
    + text_column, label_column: the file's columns, when the data source names them
    """

    location: str
    format: str
    text_column: str | None = None
    label_column: str | None = None


def resolve(name: str, root: Path = DATASOURCES_DIR) -> DataSource:
    """A data source by name (datasources/NAME.yaml) or by file path."""
    named = root / f"{name}.yaml"
    if _is_file(named):
        doc = load_yaml(named, what="data source")
        check(doc, "datasource")
        data = doc.data
        location = data["path"]
        if not is_s3_uri(location):
            try:
                location = str((named.parent / location).resolve())
            except (OSError, ValueError) as exc:  # a NUL byte, a loop of links
                raise ManifestError([doc.problem(("path",), f"not a usable path: {exc}")]) from None
        return DataSource(
            location, data.get("format") or _format(location), data.get("text_column"), data.get("label_column")
        )
    if Path(name).suffix.lower() in FORMATS or is_s3_uri(name):
        return DataSource(name, _format(name))
    known = ", ".join(sorted(p.stem for p in root.glob("*.yaml"))) if root.is_dir() else "none"
    raise PlexusError(f"no data source {name!r}: not {named}, nor a .csv/.parquet path (known: {known or 'none'})")


def for_score(score: Score, override: str | None = None) -> DataSource:
    """The data `plexus train` reads for `score`: `override` (`--data`), else the score's `data:`."""
    data = override or score.data
    if not data:
        raise PlexusError(f"{score.source}: score {score.name!r} names no data; give --data NAME|PATH or set data:")
    if isinstance(data, str):
        return resolve(data)
    if "path" in data:
        location = data["path"]
        return DataSource(
            location, data.get("format") or _format(location), data.get("text_column"), data.get("label_column")
        )
    raise PlexusError(
        f"{score.data_at}: data.class: {data['class']} reads from the Plexus service, which plexus train cannot "
        "reach; --data NAME|PATH supplies the data"
    )


def columns(score: Score, source: DataSource | None) -> tuple[str, tuple[str, ...]]:
    """The text column a score reads, and its label column, or the label columns to try in order (the first
    the data has wins). The one rule both `plexus train` and `plexus predict --file` use.

    Example: a score named `Valid` with nothing said reads `text`, and labels from `label`, else `Valid`.
    """
    text = score.text_column or (source and source.text_column) or score.config.text_column
    label = score.label_column or (source and source.label_column)
    return text, (label,) if label else label_candidates(score)


def label_candidates(score: Score) -> tuple[str, ...]:
    """Where Plexus keeps a score's labels: `label`, the score's name, its `label_score_name`; with a
    `label_field`, Plexus's `{name} {label_field}` for the last two.

    Example: `label_candidates(score named "TestScore", label_field "Valid") == ("label", "TestScore Valid")`
    """
    names = [score.name, *([score.label_score_name] if score.label_score_name else [])]
    suffix = f" {score.label_field}" if score.label_field else ""
    return tuple(dict.fromkeys(["label", *(name + suffix for name in names)]))


def check_classes(score: Score, dataset: Dataset) -> None:
    """A score's `number_of_classes` (Plexus's), when set, must be the number of classes its data holds."""
    found = len(dataset.class_counts())
    if score.number_of_classes is not None and score.number_of_classes != found:
        raise DataError(
            f"{dataset.source}: column {dataset.label_column!r} holds {found} classes, but score {score.name!r} "
            f"says number_of_classes: {score.number_of_classes} ({score.source})"
        )


def with_columns(score: Score, dataset: Dataset) -> Score:
    """`score` with the columns its data was read from written into its training config (what the model
    records)."""
    config = replace(score.config, text_column=dataset.text_column, label_column=dataset.label_column)
    return replace(score, config=config)


def _format(location: str) -> str:
    suffix = Path(location.split("?")[0]).suffix.lower()
    if suffix not in FORMATS:
        raise PlexusError(f"{location}: cannot tell the format; use a .csv or .parquet file, or set format")
    return FORMATS[suffix]


def load(
    source: DataSource, text_column: str, label_column: str | Sequence[str], s3: Any = None, *, training: bool = True
) -> Dataset:
    """Read and check the data; `label_column` is the column, or the columns to try in order (`columns`). `s3` is a
    boto3 S3 client, needed only for s3:// locations. `training=False` (an evaluation) checks only that every row
    has a text and a label: any classes, any number of examples each."""
    raw = _read_bytes(source.location, s3)
    if source.format == "csv":
        names, rows = read_csv(raw, source.location)
    else:
        names, rows = _read_parquet(raw, source.location)
    tried = (label_column,) if isinstance(label_column, str) else tuple(label_column)
    found = [name for name in tried if name in names]
    if not found and len(tried) > 1:
        raise DataError(
            f"{source.location}: no label column: none of {', '.join(map(repr, tried))} (set label_column); "
            f"the columns are: {shown_columns(names)}"
        )
    check = to_dataset if training else labelled_dataset
    return check(names, rows, source.location, text_column, found[0] if found else tried[0])


def _read_bytes(location: str, s3: Any) -> bytes:
    if is_s3_uri(location):
        from plexus_infra.core.aws import call
        from plexus_infra.core.errors import AwsError

        bucket, key = split_s3_uri(location)
        answer = call(s3.get_object, location, error=AwsError, Bucket=bucket, Key=key)
        return answer["Body"].read()
    path = Path(location)
    if not _is_file(path):
        raise DataError(f"{location}: no such data file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{location}: cannot read: {exc.strerror or exc}") from None


def _is_file(path: Path) -> bool:
    """Path.is_file, but a name that cannot be a file (too long, a NUL byte) is simply not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_parquet(raw: bytes, location: str) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise PlexusError(f"{location}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = parquet.read_table(io.BytesIO(raw))
    except Exception as exc:  # pyarrow's errors (ArrowInvalid, ...) share no base class worth naming here
        raise DataError(f"{location}: not a readable Parquet file: {' '.join(str(exc).split())[:200]}") from None
    return [str(c) for c in table.column_names], table.to_pylist()
