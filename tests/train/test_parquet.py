"""Parquet data sources read the same rows as CSV, locally and from S3; a broken file is one clear line."""

from __future__ import annotations

from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plexus_infra.sandbox import Sandbox
from plexus_train import datasources
from plexus_train.container.errors import DataError

ROWS = {"text": ["the parcel is late", "refund my card", "where is my box", "charged twice"],
        "topic": ["shipping", "billing", "shipping", "billing"]}  # fmt: skip


def write_parquet(path: Path) -> Path:
    pq.write_table(pa.table(ROWS), path)
    return path


def test_a_parquet_file_reads_like_the_same_csv(project: Path, tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "tickets.parquet")
    csv = tmp_path / "tickets.csv"
    csv.write_text("text,topic\n" + "".join(f"{t},{c}\n" for t, c in zip(*ROWS.values(), strict=True)))
    from_parquet = datasources.load(datasources.resolve(str(parquet)), "text", "topic")
    from_csv = datasources.load(datasources.resolve(str(csv)), "text", "topic")
    assert from_parquet.texts == from_csv.texts == tuple(ROWS["text"])
    assert from_parquet.class_counts() == from_csv.class_counts() == {"shipping": 2, "billing": 2}


def test_a_named_parquet_source_on_s3_is_read_through_the_sandbox(
    project: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tickets")
    s3.put_object(Bucket="tickets", Key="v1/tickets.parquet", Body=write_parquet(tmp_path / "t.parquet").read_bytes())
    (project / "datasources" / "remote.yaml").write_text(
        "name: remote\npath: s3://tickets/v1/tickets.parquet\ntext_column: text\nlabel_column: topic\n"
    )
    source = datasources.resolve("remote")
    assert source.format == "parquet"
    assert datasources.load(source, "text", "topic", s3).texts == tuple(ROWS["text"])


def test_a_broken_parquet_file_is_one_clear_error(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet footer")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable Parquet file") as raised:
        datasources.load(datasources.resolve(str(broken)), "text", "topic")
    assert "\n" not in str(raised.value)
