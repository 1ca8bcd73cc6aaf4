"""Planning many environments in one run, against one environment in the same run (issue 13's targets):
20 environments plan in ≤ 3× the time of one (medians), with ≤ 18 calls per environment plus one identity call
per set of credentials.

The 20 manifests are generated into a temporary directory, half of them in a second account reached by assuming
a deploy role (as production usually is); all are applied first (not timed), so each plan reads a converged
environment, the steady state a pull request plans against.

    python benchmarks/bench_fleet.py [--runs 5] [--environments 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import timed  # noqa: E402
from plexus_infra.sandbox import REAL_AWS_VARIABLES, running_sandbox  # noqa: E402

OTHER_ACCOUNT = "210987654321"


def manifest(index: int) -> str:
    """Environment `bench-NN`; the odd ones live in OTHER_ACCOUNT, reached through a deploy role."""
    text = f"version: 1\nenvironment: bench-{index:02d}\nremoval_policy: destroy\ntags:\n  project: plexus\n"
    if index % 2:
        text += f'account_id: "{OTHER_ACCOUNT}"\nassume_role_arn: arn:aws:iam::{OTHER_ACCOUNT}:role/plexus-deploy\n'
    text += (
        "bucket:\n  lifecycle:\n    rules:\n      - {id: expire-training-data, prefix: training-data/, "
        "expiration_days: 7}\n"
    )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--environments", type=int, default=20)
    args = parser.parse_args()
    infra = [sys.executable, "-m", "plexus_infra"]
    with tempfile.TemporaryDirectory() as scratch, running_sandbox() as sandbox:
        work = Path(scratch)
        (work / "environments").mkdir()
        for index in range(args.environments):
            (work / "environments" / f"bench-{index:02d}.yaml").write_text(manifest(index))
        env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARIABLES} | sandbox.environment()
        env["PYTHONPATH"] = str(ROOT)
        for path in sorted((work / "environments").glob("*.yaml")):
            subprocess.run(
                [*infra, "apply", str(path), "--auto-approve"], env=env, cwd=work, check=True, capture_output=True
            )
        one, many = [], []
        for _ in range(args.runs):
            one.append(timed([*infra, "plan", "environments/bench-00.yaml", "--stats"], env, work))
            many.append(timed([*infra, "plan", "--all", "--stats"], env, work))
    single = statistics.median(t for t, _, _ in one)
    fleet = statistics.median(t for t, _, _ in many)
    credentials = 2
    calls_one, calls_many = one[-1][1], many[-1][1]
    per_environment = (calls_many - credentials) / args.environments
    print(f"{args.runs} runs each against moto on 127.0.0.1; medians of whole-process wall time\n")
    print(f"{'':34}{'median s':>10}{'× one':>8}{'API calls':>11}  target")
    print(f"{'plan of 1 environment':34}{single:10.3f}{1.0:8.2f}{calls_one:11d}")
    print(
        f"{f'plan --all ({args.environments} environments)':34}{fleet:10.3f}{fleet / single:8.2f}{calls_many:11d}"
        "  ≤ 3× one"
    )
    print(
        f"\ncalls per environment besides identity: {per_environment:.1f} (target ≤ 18; "
        f"{credentials} identity calls, one per set of credentials)"
    )


if __name__ == "__main__":
    main()
