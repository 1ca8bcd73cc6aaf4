"""The published contract of an environment: which one a command targets, the names derived from it, its
outputs and how to read them. Both tools and the tests use this module; nothing else derives these names.

  environment   --env NAME, else $PLEXUS_ENVIRONMENT, else development
  manifest      environments/{name}.yaml
  bucket        plexus-{name}-training                  (a manifest's bucket.name overrides it)
  role          plexus-{name}-sagemaker-training        (role.name)
  outputs       SSM String parameters {prefix}/{key}, prefix /plexus/{name} (outputs.parameter_prefix), each
                tagged with its export name plexus-{name}-{key}, for the keys in OUTPUT_KEYS

Example:
    target = resolve_target("staging")             # environments/staging.yaml when present, else defaults
    values = read_outputs(clients.ssm, target.outputs, target.name)
    values[BUCKET_NAME] == "plexus-staging-training"
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_infra.core.errors import PlexusError

DEFAULT_ENVIRONMENT = "development"
ENVIRONMENT_VARIABLE = "PLEXUS_ENVIRONMENT"
ENVIRONMENTS_DIR = Path("environments")
DEFAULT_REGION = "us-east-1"

BUCKET_NAME = "training-bucket-name"
BUCKET_ARN = "training-bucket-arn"
ROLE_ARN = "sagemaker-training-role-arn"
OUTPUT_KEYS = (BUCKET_NAME, BUCKET_ARN, ROLE_ARN)
INLINE_POLICY_NAME = "plexus-training-access"  # the role's inline policy that is the tool's own

# Variables that stand in for a published output when training runs outside an environment this tool manages
# (the first one set wins; SAGEMAKER_ROLE_ARN is what Plexus users already set).
OUTPUT_OVERRIDES: dict[str, tuple[str, ...]] = {
    BUCKET_NAME: ("PLEXUS_S3_BUCKET",),
    ROLE_ARN: ("PLEXUS_SAGEMAKER_ROLE_ARN", "SAGEMAKER_ROLE_ARN"),
}


def environment_name(flag: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The environment a command targets: `--env NAME`, else $PLEXUS_ENVIRONMENT, else development."""
    return flag or environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT


def manifest_path(name: str, root: Path = ENVIRONMENTS_DIR) -> Path:
    """Where an environment's manifest lives: `manifest_path("staging") == Path("environments/staging.yaml")`."""
    return root / f"{name}.yaml"


def default_bucket_name(environment: str) -> str:
    return f"plexus-{environment}-training"


def default_role_name(environment: str) -> str:
    return f"plexus-{environment}-sagemaker-training"


def default_role_description(environment: str) -> str:
    return f"SageMaker training execution role for Plexus {environment}"


def default_parameter_prefix(environment: str) -> str:
    return f"/plexus/{environment}"


def export_name(environment: str, key: str) -> str:
    """The name CloudFormation exported the output under, kept as the parameter's tag: `plexus-staging-{key}`."""
    return f"plexus-{environment}-{key}"


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def role_arn(partition: str, account: str, role: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role}"


@dataclass(frozen=True)
class Output:
    """One published output: an SSM String parameter that keeps the CloudFormation export name.

    + key: one of OUTPUT_KEYS
    + parameter_name: `{prefix}/{key}`
    + export_name: `plexus-{environment}-{key}`
    """

    key: str
    parameter_name: str
    export_name: str


def outputs_for(environment: str, prefix: str | None = None) -> tuple[Output, ...]:
    """The environment's outputs under `prefix` (default `/plexus/{environment}`), in OUTPUT_KEYS order."""
    prefix = (prefix or default_parameter_prefix(environment)).rstrip("/")
    return tuple(Output(key, f"{prefix}/{key}", export_name(environment, key)) for key in OUTPUT_KEYS)


@dataclass(frozen=True)
class Target:
    """What a consumer of an environment needs to know about it (the training module, `outputs`).

    + manifest: the manifest these came from, or None when there is none and the defaults apply
    """

    name: str
    region: str
    outputs: tuple[Output, ...]
    manifest: str | None = None


def resolve_target(flag: str | None = None, root: Path = ENVIRONMENTS_DIR) -> Target:
    """The environment a command targets (`environment_name`), read from its manifest when there is one (which
    then must validate), else the defaults with the region of the standard AWS chain (`default_region`)."""
    name = environment_name(flag)
    manifest = manifest_path(name, root)
    if manifest.is_file():
        from plexus_infra.manifest.validate import load_environment

        env = load_environment(manifest)
        return Target(env.name, env.region, env.outputs, str(manifest))
    return Target(name, default_region(), outputs_for(name))


def default_region(environ: Mapping[str, str] = os.environ) -> str:
    """$AWS_REGION, else the standard AWS chain (AWS_DEFAULT_REGION, the profile's `region` in ~/.aws/config),
    else us-east-1."""
    if environ.get("AWS_REGION"):
        return environ["AWS_REGION"]
    import botocore.session

    return botocore.session.get_session().get_config_variable("region") or DEFAULT_REGION


def read_outputs(ssm: Any, outputs: Sequence[Output], environment: str) -> dict[str, str | None]:
    """Output key → its published value, None when it is not published; one GetParameters call.

    + ssm: a boto3 SSM client for the environment's region
    """
    from plexus_infra.core.aws import call

    names = [output.parameter_name for output in outputs]
    answer = call(ssm.get_parameters, f"outputs of environment {environment}", Names=names) or {}
    values = {parameter["Name"]: parameter["Value"] for parameter in answer.get("Parameters", ())}
    return {output.key: values.get(output.parameter_name) for output in outputs}


@dataclass(frozen=True)
class TrainingOutputs:
    """The two outputs training and deployment use: the bucket and the SageMaker execution role."""

    bucket: str
    role_arn: str


def training_outputs(ssm: Any, target: Target, environ: Mapping[str, str] = os.environ) -> TrainingOutputs:
    """The bucket and role: OUTPUT_OVERRIDES variables first, the published SSM parameters for the rest (read
    only when a variable does not supply them); a missing one is one line saying how to publish it."""
    values: dict[str, str | None] = {}
    for key, variables in OUTPUT_OVERRIDES.items():
        values[key] = next((environ[v] for v in variables if environ.get(v)), None)
    wanted = [output for output in target.outputs if output.key in OUTPUT_OVERRIDES and values[output.key] is None]
    if wanted:
        values |= read_outputs(ssm, wanted, target.name)
    by_key = {output.key: output for output in target.outputs}
    for key, variables in OUTPUT_OVERRIDES.items():
        if not values[key]:
            raise PlexusError(
                f"environment {target.name} has no output {key} (SSM parameter {by_key[key].parameter_name}; "
                f"or set {' or '.join(variables)}); run `plexus-infra apply --env {target.name}` first"
            )
    return TrainingOutputs(bucket=str(values[BUCKET_NAME]), role_arn=str(values[ROLE_ARN]))
