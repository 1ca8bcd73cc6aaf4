"""Data-parallel training: the same data trained by the packaged entry with 1 process and with 2 (torchrun, gloo over
127.0.0.1, as a two-process host or local mode's two hosts run it), in the same run, interleaved; medians of several
runs each. Target: validation macro-F1 of the two within 0.02 of each other; examples/s of each quoted.

    HF_HUB_OFFLINE=1 python benchmarks/bench_distributed.py [--runs 5] [--epochs 6]

Each run is the container contract for real: sourcedir's code extracted into an /opt/ml-like root, SM_* variables,
`python train.py`; with 2 processes the entry launches torchrun itself (`container.distributed`). The data is the
demo tickets, a tiny BERT (hidden 128, 2 layers). Run i uses seed 42 + i on both sides (a split, shuffle and
initialisation of its own; the ranks' dropout draws differ from one process's, so one seed alone says little): the
F1 compared is the median over the seeds. Examples/s is the training phase's (each epoch's train_examples /
train_seconds, as the epoch line prints it: all ranks' examples together), the median over epochs and runs; one
thread per process, so 2 processes use 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plexus_train.container.bundle import TRAINING_ENTRY, copy_code  # noqa: E402
from plexus_train.container.config import TrainingConfig  # noqa: E402
from plexus_train.tinymodel import build_tiny_bert, csv_texts, vocabulary  # noqa: E402

DATA = ROOT / "datasources" / "support_tickets.csv"
EPOCH_RATE = re.compile(r"^epoch \d+: .*, (\d+) ex/s$", re.MULTILINE)


def write_data(target: Path) -> int:
    """The demo tickets as the train channel's data.csv; the rows written."""
    with DATA.open(newline="", encoding="utf-8") as source:
        rows = [{"text": row["text"], "topic": row["topic"]} for row in csv.DictReader(source)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["text", "topic"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def run(code: Path, data: Path, root: Path, config: TrainingConfig, processes: int) -> tuple[float, list[float]]:
    """Train once with `processes` processes; (validation macro-F1 of the best epoch, each epoch's examples/s)."""
    hyperparameters = {
        **{name: json.loads(value) for name, value in config.to_hyperparameters().items()},
        "plexus_processes_per_host": processes,
    }
    environ = {
        **os.environ,
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_HPS": json.dumps(hyperparameters),
        "SM_CHANNEL_TRAIN": str(data.parent),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "PLEXUS_MASTER_ADDR": "127.0.0.1",
        "PLEXUS_MASTER_PORT": str(free_port()),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, str(code / TRAINING_ENTRY)], cwd=code, env=environ, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"training with {processes} process(es) failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    config_json = json.loads((root / "model" / "config.json").read_text(encoding="utf-8"))
    assert config_json["world_size"] == processes
    return config_json["metrics"]["f1"], [float(rate) for rate in EPOCH_RATE.findall(result.stdout)]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs each, run i with seed 42 + i")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        model = build_tiny_bert(scratch_dir / "bert", vocabulary(csv_texts(DATA, "text")), hidden_size=128)
        rows = write_data(scratch_dir / "data" / "data.csv")
        copy_code(scratch_dir / "code", TRAINING_ENTRY)
        config = TrainingConfig(
            embeddings_model=str(model), trainable_layers=2, epochs=args.epochs, batch_size=32, max_tokens=32,
            learning_rate=1e-3, early_stopping_patience=args.epochs, text_column="text", label_column="topic",
        )  # fmt: skip
        f1s: dict[int, list[float]] = {1: [], 2: []}
        rates: dict[int, list[float]] = {1: [], 2: []}
        for attempt in range(args.runs):  # interleaved, so drift in machine load hits both sides alike
            seeded = replace(config, seed=42 + attempt)
            for processes in (1, 2):
                f1, epoch_rates = run(
                    scratch_dir / "code", scratch_dir / "data" / "data.csv", scratch_dir / f"run-{attempt}-{processes}",
                    seeded, processes,
                )  # fmt: skip
                f1s[processes].append(f1)
                rates[processes] += epoch_rates
    print(f"{rows} examples ({int(rows * 0.8)} trained on per epoch), {args.epochs} epochs, {args.runs} seeds each")
    for processes in (1, 2):
        f1, rate = statistics.median(f1s[processes]), statistics.median(rates[processes])
        each = ", ".join(f"{value:.3f}" for value in f1s[processes])
        name = "processes" if processes > 1 else "process  "
        print(f"{processes} {name}: validation macro-F1 {f1:.3f} (median; seeds {each}), {rate:6.0f} examples/s")
    gap = abs(statistics.median(f1s[1]) - statistics.median(f1s[2]))
    speedup = statistics.median(rates[2]) / statistics.median(rates[1])
    print(
        f"macro-F1 gap {gap:.3f} (target ≤ 0.02): {'met' if gap <= 0.02 else 'NOT met'}; 2 processes {speedup:.2f}× 1"
    )


if __name__ == "__main__":
    main()
