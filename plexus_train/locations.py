"""Where a score's artifacts live, locally and in the environment's bucket: the one place that spells them.

  models/{sc}/{s}/                          local artifacts (`plexus train --platform local` writes them)
  s3://BUCKET/training-data/{sc}/{s}/data.csv         the checked data a job reads (its `train` channel)
  s3://BUCKET/training-code/{sc}/{s}/sourcedir.tar.gz the code a job runs
  s3://BUCKET/models/{sc}/{s}/jobs/                   where jobs write (`{job}/output/model.tar.gz`)
  s3://BUCKET/models/{sc}/{s}/model.tar.gz            the model endpoints serve
  s3://BUCKET/models/{sc}/{s}/checkpoints/            a checkpointed job's checkpoints (spot, local mode)

`{sc}/{s}` is `Score.path`, `{scorecard_key}/{score_key}`. The training role plexus-infra creates may write
`training-data/`, `models/` and `training-code/` only, which is why jobs write under `models/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plexus_train.container.entrypoint import DATA_FILE

if TYPE_CHECKING:
    from plexus_train.scorecards import Score

MODELS_DIR = Path("models")
S3 = "s3://"


def model_dir(score: Score, root: Path = MODELS_DIR) -> Path:
    """The local artifacts directory: `models/{sc}/{s}` under `root`."""
    return root / score.scorecard_key / score.key


@dataclass(frozen=True)
class Keys:
    """A score's S3 keys in the environment's bucket.

    + data: the checked data a job reads, `training-data/{sc}/{s}/data.csv`
    + code: the code a job runs, `training-code/{sc}/{s}/sourcedir.tar.gz`
    + model: the model endpoints serve, `models/{sc}/{s}/model.tar.gz`
    + jobs: where jobs write, `models/{sc}/{s}/jobs` (under models/, which the training role may write)
    + checkpoints: where a checkpointed job's checkpoints are synced, `models/{sc}/{s}/checkpoints`
    """

    data: str
    code: str
    model: str
    jobs: str
    checkpoints: str


def keys(score: Score) -> Keys:
    """Example: `keys(score).model == "models/demo-support/ticket-topic/model.tar.gz"`"""
    return keys_of_path(score.path)


def keys_of_path(path: str) -> Keys:
    """The keys of the score whose `Score.path` is `path` (`{sc}/{s}`)."""
    return Keys(
        data=f"training-data/{path}/{DATA_FILE}",
        code=f"training-code/{path}/sourcedir.tar.gz",
        model=f"models/{path}/model.tar.gz",
        jobs=f"models/{path}/jobs",
        checkpoints=f"models/{path}/checkpoints",
    )


JOBS = re.compile(r"(?:^|/)models/([^/]+)/([^/]+)/jobs(?:/|$)")


def keys_of_jobs(location: str) -> Keys | None:
    """The score's keys from a key or URI under its jobs prefix, None when `location` is not under one.

    Example: `keys_of_jobs("s3://b/models/a/b/jobs").model == "models/a/b/model.tar.gz"`
    """
    found = JOBS.search(location.removeprefix(S3).partition("/")[2] if is_s3_uri(location) else location)
    return keys_of_path(f"{found.group(1)}/{found.group(2)}") if found else None


def s3_uri(bucket: str, key: str) -> str:
    return f"{S3}{bucket}/{key}"


def is_s3_uri(location: str) -> bool:
    return location.startswith(S3)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI.

    Example: `split_s3_uri("s3://b/models/a/b/model.tar.gz") == ("b", "models/a/b/model.tar.gz")`
    """
    bucket, _, key = uri.removeprefix(S3).partition("/")
    return bucket, key
