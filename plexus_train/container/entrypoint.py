"""SageMaker script-mode training: the same training code as `plexus train --platform local`, driven by the
variables SageMaker sets in the container.

  SM_HPS            JSON hyperparameters (TrainingConfig fields + plexus_scorecard, plexus_score, plexus_verbose)
  SM_CHANNEL_TRAIN  directory holding the `train` channel (data.csv)
  SM_MODEL_DIR      where the artifacts go (SageMaker tars it to model.tar.gz)
  SM_OUTPUT_DATA_DIR  extra outputs (training_history.json is copied here)
  SM_HOSTS, SM_CURRENT_HOST, SM_NUM_GPUS  how many processes train (`distributed`: more than one → torchrun)

With `plexus_checkpoints` each epoch is checkpointed to /opt/ml/checkpoints (CheckpointConfig.LocalPath, beside
SM_MODEL_DIR's /opt/ml/model), and a restarted job resumes from the newest checkpoint there (`checkpoints`).

On an expected failure it writes the reason to /opt/ml/output/failure (next to SM_OUTPUT_DATA_DIR), which
SageMaker reports as the job's FailureReason, and exits 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from plexus_train.container.config import TrainingConfig
from plexus_train.container.dataset import read_csv, to_dataset
from plexus_train.container.distributed import World, is_worker, join, launch_plan, leave, run_workers
from plexus_train.container.errors import ContainerError, DataError
from plexus_train.container.reporting import LogReporter

BASE_MODEL_DIR = "base_model"
DATA_FILE = "data.csv"
SCORECARD_HP = "plexus_scorecard"
SCORE_HP = "plexus_score"
VERBOSE_HP = "plexus_verbose"  # true: a log line per optimizer step (`plexus train --verbose`)
PROCESSES_HP = "plexus_processes_per_host"  # 0: one per GPU, else 1
CHECKPOINTS_HP = "plexus_checkpoints"  # true: checkpoint each epoch to /opt/ml/checkpoints and resume from it


def checkpoint_dir(environ: Mapping[str, str]) -> Path:
    """/opt/ml/checkpoints: beside the model directory (/opt/ml/model), where CheckpointConfig.LocalPath points."""
    return Path(environ["SM_MODEL_DIR"]).parent / "checkpoints"


def resolve_base_model(name: str, code_dir: Path) -> str:
    """A local encoder shipped inside sourcedir.tar.gz is named relative to the code; anything else is a
    Hugging Face id (or an absolute path) used as is."""
    shipped = code_dir / name
    return str(shipped) if not Path(name).is_absolute() and shipped.is_dir() else name


def run(environ: Mapping[str, str], code_dir: Path, world: World | None = None) -> Path | None:
    """Train from the SM_* variables; return the model directory (None on ranks other than 0, which save
    nothing)."""
    from plexus_train.container.artifacts import HISTORY, save_classifier
    from plexus_train.container.trainer import train_classifier

    world = world or World()

    hyperparameters = json.loads(environ.get("SM_HPS") or "{}")
    config = TrainingConfig.from_hyperparameters(hyperparameters)
    config = replace(config, embeddings_model=resolve_base_model(config.embeddings_model, code_dir))
    data_path = Path(environ["SM_CHANNEL_TRAIN"]) / DATA_FILE
    if not data_path.is_file():
        raise DataError(f"{data_path}: the train channel has no {DATA_FILE}")
    columns, rows = read_csv(data_path.read_bytes(), str(data_path))
    dataset = to_dataset(columns, rows, str(data_path), config.text_column, config.label_column)
    if world.main:
        print(f"{len(dataset.texts)} examples: {dataset.class_counts()}", flush=True)
    reporter = LogReporter(verbose=hyperparameters.get(VERBOSE_HP) in (True, "true"))
    checkpoints = checkpoint_dir(environ) if hyperparameters.get(CHECKPOINTS_HP) in (True, "true") else None
    trained = train_classifier(dataset.texts, dataset.labels, config, reporter, checkpoints, world)
    if not world.main:
        return None
    identity = {
        "scorecard": str(hyperparameters.get(SCORECARD_HP, "")),
        "score": str(hyperparameters.get(SCORE_HP, "")),
    }
    model_dir = save_classifier(trained, Path(environ["SM_MODEL_DIR"]), identity)
    output_dir = environ.get("SM_OUTPUT_DATA_DIR")
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_dir / HISTORY, Path(output_dir) / HISTORY)
    return model_dir


def main() -> int:
    """The entry: with several training processes (hosts × processes per host) and not yet one of them, start
    this host's under torchrun (`distributed`); else train."""
    code_dir = Path(sys.argv[0]).resolve().parent
    hyperparameters = json.loads(os.environ.get("SM_HPS") or "{}")
    launch = launch_plan(os.environ, int(hyperparameters.get(PROCESSES_HP) or 0))
    if launch.world_size > 1 and not is_worker(os.environ):
        return run_workers(launch, str(Path(sys.argv[0]).resolve()))
    world = join(os.environ) if is_worker(os.environ) else World()
    try:
        run(os.environ, code_dir, world)
    except ContainerError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        output_dir = os.environ.get("SM_OUTPUT_DATA_DIR")
        if output_dir:
            Path(output_dir).parent.mkdir(parents=True, exist_ok=True)
            (Path(output_dir).parent / "failure").write_text(str(exc), encoding="utf-8")
        return 1
    leave(world)
    return 0
