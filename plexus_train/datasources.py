"""Named data sources: `--data NAME` is `datasources/NAME.yaml` (a CSV or Parquet file, local or on S3, and
its columns) or, when NAME is a path to a .csv/.parquet file, that file."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.errors import ManifestError, PlexusError
from plexus_infra.core.yamldoc import load_yaml
from plexus_train.container.dataset import Dataset, read_csv, to_dataset
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


def columns(score: Score, source: DataSource | None) -> tuple[str, str]:
    """The (text, label) columns a score reads: the score's own, else its data source's, else the defaults
    (`text`, `label`). The one rule both `plexus train` and `plexus predict --file` use."""
    text = score.text_column or (source and source.text_column) or score.config.text_column
    label = score.label_column or (source and source.label_column) or score.config.label_column
    return text, label


def with_columns(score: Score, source: DataSource | None) -> Score:
    """`score` with `columns(score, source)` written into its training config (what the model records)."""
    text, label = columns(score, source)
    return replace(score, config=replace(score.config, text_column=text, label_column=label))


def _format(location: str) -> str:
    suffix = Path(location.split("?")[0]).suffix.lower()
    if suffix not in FORMATS:
        raise PlexusError(f"{location}: cannot tell the format; use a .csv or .parquet file, or set format")
    return FORMATS[suffix]


def load(source: DataSource, text_column: str, label_column: str, s3: Any = None) -> Dataset:
    """Read and check the data; `s3` is a boto3 S3 client, needed only for s3:// locations."""
    raw = _read_bytes(source.location, s3)
    if source.format == "csv":
        columns, rows = read_csv(raw, source.location)
    else:
        columns, rows = _read_parquet(raw, source.location)
    return to_dataset(columns, rows, source.location, text_column, label_column)


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
