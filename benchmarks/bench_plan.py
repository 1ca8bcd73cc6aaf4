"""Speed of plan and apply against a local moto server, next to a floor measured in the same run.

The floor is the least any boto3 tool could do: import boto3, create the four clients and issue the same
reads concurrently, comparing nothing. Targets (issue 3): no-op plan ≤ 1.2× floor and ≤ 20 API calls;
from-scratch apply ≤ 2× floor; a no-op apply makes 0 writes.

    python benchmarks/bench_plan.py [--runs 5] [--env staging]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import timed  # noqa: E402
from plexus_infra.sandbox import REAL_AWS_VARIABLES, running_sandbox  # noqa: E402

FLOOR = r"""
import sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
env = sys.argv[1]
bucket, role = f"plexus-{env}-training", f"plexus-{env}-sagemaker-training"
names = [f"/plexus/{env}/{k}" for k in ("training-bucket-name", "training-bucket-arn", "sagemaker-training-role-arn")]
session = boto3.session.Session()
config = Config(retries={"mode": "standard"}, max_pool_connections=32)
s3, iam, ssm, sts = (session.client(s, config=config) for s in ("s3", "iam", "ssm", "sts"))
reads = [lambda: sts.get_caller_identity(), lambda: s3.head_bucket(Bucket=bucket)]
reads += [lambda m=m: getattr(s3, m)(Bucket=bucket) for m in (
    "get_bucket_tagging", "get_bucket_versioning", "get_bucket_encryption", "get_public_access_block",
    "get_bucket_ownership_controls", "get_bucket_lifecycle_configuration", "get_bucket_policy")]
reads += [lambda: iam.get_role(RoleName=role), lambda: iam.list_role_policies(RoleName=role),
          lambda: iam.get_role_policy(RoleName=role, PolicyName="plexus-training-access"),
          lambda: iam.list_attached_role_policies(RoleName=role), lambda: ssm.get_parameters(Names=names)]
reads += [lambda n=n: ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=n) for n in names]
reads += [lambda: ssm.describe_parameters(ParameterFilters=[
    {"Key": "tag:plexus:environment", "Values": [env]}, {"Key": "tag:plexus:export-name"}])]
with ThreadPoolExecutor(len(reads)) as pool:
    list(pool.map(lambda read: read(), reads))
print(f"AWS API calls: {len(reads)} (0 writes)", file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env", default="staging")
    args = parser.parse_args()
    infra = [sys.executable, "-m", "plexus_infra"]
    with running_sandbox() as sandbox:
        env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARIABLES} | sandbox.environment()
        applies, floors, plans, noop_applies = [], [], [], []
        for _ in range(args.runs):
            sandbox.reset()
            applies.append(timed([*infra, "apply", "--env", args.env, "--auto-approve", "--stats"], env, ROOT))
            floors.append(timed([sys.executable, "-c", FLOOR, args.env], env, ROOT))
            plans.append(timed([*infra, "plan", "--env", args.env, "--stats"], env, ROOT))
            noop_applies.append(timed([*infra, "apply", "--env", args.env, "--auto-approve", "--stats"], env, ROOT))
    floor = statistics.median(t for t, _, _ in floors)
    print(f"{args.runs} runs each against moto on 127.0.0.1; medians of whole-process wall time\n")
    print(f"{'':28}{'median s':>10}{'× floor':>9}{'API calls':>11}{'writes':>8}  target")
    rows = [
        ("floor (boto3, same reads)", floors, ""),
        ("no-op plan", plans, "≤ 1.2× floor, ≤ 20 calls"),
        ("from-scratch apply", applies, "≤ 2× floor"),
        ("no-op apply", noop_applies, "0 writes"),
    ]
    for name, samples, target in rows:
        median = statistics.median(t for t, _, _ in samples)
        calls, writes = samples[-1][1], samples[-1][2]
        print(f"{name:28}{median:10.3f}{median / floor:9.2f}{calls:11d}{writes:8d}  {target}")


if __name__ == "__main__":
    main()
