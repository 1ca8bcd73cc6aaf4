"""The README's demo: a local AWS sandbox, then the main job against it, as a user would type it.

validate → plan (changes) → apply → plan (no changes) → outputs → a SageMaker training job in local mode (through
the sandbox's S3) → `plexus serve` of the job's model.tar.gz → `plexus predict --endpoint-url` against it.
Each step is the real command line, run in a subprocess with the sandbox's environment.
"""

from __future__ import annotations

import os
import shlex
import signal
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

# Offline: a tiny BERT built from the demo data's vocabulary stands in for a hub model. The job runs in local mode
# (`--instance-type local`): moto's CreateTrainingJob runs nothing, so this machine runs the job's container contract.
TRAINING_STEPS: list[tuple[list[str], tuple[int, ...]]] = [
    (["python", "-m", "plexus_train.tinymodel", "build/tiny-bert", "--vocab-from", "datasources/support_tickets.csv"],
     (0,)),
    (["plexus", "train", "--scorecard", "Demo Support", "--score", "Ticket Topic", "--yaml",
      "--data", "support-tickets", "--instance-type", "local", "--epochs", "4", "--env", "development"], (0,)),
]  # fmt: skip
SERVE = ["plexus", "serve", "--scorecard", "demo-support", "--score", "ticket-topic", "--env", "development",
         "--port", "0"]  # fmt: skip
PREDICT = ["plexus", "predict", "--scorecard", "demo-support", "--score", "ticket-topic", "--text",
           "the courier never arrived", "--endpoint-url"]  # fmt: skip
# moto ignores the TLS-only policy's condition and refuses every PutObject under its Deny (docs/aws-vs-moto.md), so
# the demo's job uses a bucket of its own, named by PLEXUS_S3_BUCKET as a user may name one.
DEMO_BUCKET = "plexus-demo-local-mode"


def run(command: list[str], expected: tuple[int, ...], env: dict[str, str]) -> None:
    print(f"\n$ {shlex.join(command)}", flush=True)
    result = subprocess.run(argv(command), cwd=ROOT, env=env)
    if result.returncode not in expected:
        sys.exit(f"demo failed: `{shlex.join(command)}` exited {result.returncode}, expected {expected}")


def argv(command: list[str]) -> list[str]:
    return [str(Path(sys.executable).parent / command[0]), *command[1:]]


def serve_and_predict(env: dict[str, str]) -> None:
    """`plexus serve` in the background until it listens, `plexus predict --endpoint-url` against it, then Ctrl-C."""
    print(f"\n$ {shlex.join(SERVE)} &", flush=True)
    server = subprocess.Popen(argv(SERVE), cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    url = None
    for line in server.stdout or ():
        print(line, end="", flush=True)
        if line.startswith("listening on "):
            url = line.split()[2]
            break
    try:
        if url is None:
            sys.exit(f"demo failed: `{shlex.join(SERVE)}` exited {server.wait()} before it listened")
        run([*PREDICT, url], (0,), env)
    finally:
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
        print(rest, end="", flush=True)


def sandbox_keys(env: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}


def main() -> None:
    port = int(os.environ.get("PLEXUS_SANDBOX_PORT", "0"))
    with running_sandbox(port=port, aws_managed_policies=True) as sandbox:
        print(f"Started a local AWS sandbox on {sandbox.endpoint_url} (moto; no AWS account needed).")
        env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARIABLES}
        env.update(sandbox.environment())
        env["HF_HUB_OFFLINE"] = "1"
        for command, expected in INFRA_STEPS:
            run(command, expected, env)
        import boto3

        boto3.client(
            "s3", endpoint_url=sandbox.endpoint_url, region_name="us-east-1", **sandbox_keys(env)
        ).create_bucket(Bucket=DEMO_BUCKET)
        env["PLEXUS_S3_BUCKET"] = DEMO_BUCKET
        print(f"\n(the training job's bucket: {DEMO_BUCKET}, as PLEXUS_S3_BUCKET names it)")
        for command, expected in TRAINING_STEPS:
            run(command, expected, env)
        serve_and_predict(env)
    print("\nDemo complete; the sandbox is stopped and everything it held is gone.")


if __name__ == "__main__":
    main()
