"""The README's demo: a local AWS sandbox, then the main job against it, as a user would type it.

validate → plan (changes) → apply → plan (no changes) → outputs → a short local training run.
Each step is the real command line, run in a subprocess with the sandbox's environment.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plexus_infra.sandbox import REAL_AWS_VARIABLES, running_sandbox  # noqa: E402

INFRA_STEPS: list[tuple[list[str], tuple[int, ...]]] = [
    (["plexus-infra", "validate", "environments/development.yaml", "environments/staging.yaml",
      "environments/production.yaml"], (0,)),
    (["plexus-infra", "plan", "--env", "development", "--detailed-exitcode"], (2,)),
    (["plexus-infra", "apply", "--env", "development", "--auto-approve", "--stats"], (0,)),
    (["plexus-infra", "plan", "--env", "development", "--detailed-exitcode", "--stats"], (0,)),
    (["plexus-infra", "outputs", "--env", "development"], (0,)),
]  # fmt: skip

# Offline: a tiny BERT built from the demo data's vocabulary stands in for a hub model.
TRAINING_STEPS: list[tuple[list[str], tuple[int, ...]]] = [
    (["python", "-m", "plexus_train.tinymodel", "build/tiny-bert", "--vocab-from", "datasources/support_tickets.csv"],
     (0,)),
    (["plexus", "train", "--scorecard", "Demo Support", "--score", "Ticket Topic", "--yaml",
      "--data", "support-tickets"], (0,)),
    (["plexus", "predict", "--scorecard", "demo-support", "--score", "ticket-topic", "--text",
      "the courier never arrived"], (0,)),
]  # fmt: skip


def run(command: list[str], expected: tuple[int, ...], env: dict[str, str]) -> None:
    print(f"\n$ {shlex.join(command)}", flush=True)
    executable = Path(sys.executable).parent / command[0]
    result = subprocess.run([str(executable), *command[1:]], cwd=ROOT, env=env)
    if result.returncode not in expected:
        sys.exit(f"demo failed: `{shlex.join(command)}` exited {result.returncode}, expected {expected}")


def main() -> None:
    port = int(os.environ.get("PLEXUS_SANDBOX_PORT", "0"))
    with running_sandbox(port=port, aws_managed_policies=True) as sandbox:
        print(f"Started a local AWS sandbox on {sandbox.endpoint_url} (moto; no AWS account needed).")
        env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARIABLES}
        env.update(sandbox.environment())
        env["HF_HUB_OFFLINE"] = "1"
        for command, expected in INFRA_STEPS + TRAINING_STEPS:
            run(command, expected, env)
    print("\nDemo complete; the sandbox is stopped and everything it held is gone.")


if __name__ == "__main__":
    main()
