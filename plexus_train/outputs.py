"""An environment's published outputs (SSM String parameters written by `plexus-infra apply`), read with the
same names the manifest declares, with environment-variable overrides for running outside the stack."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from plexus_infra.errors import PlexusError

ENVIRONMENTS_DIR = Path("environments")
DEFAULT_ENVIRONMENT = "development"
DEFAULT_REGION = "us-east-1"
BUCKET = "training-bucket-name"
ROLE = "sagemaker-training-role-arn"
OVERRIDES = {BUCKET: "PLEXUS_S3_BUCKET", ROLE: "PLEXUS_SAGEMAKER_ROLE_ARN"}


@dataclass(frozen=True)
class Environment:
    """+ name: environment name
    + region: its AWS region
    + parameters: output key → SSM parameter name
    """

    name: str
    region: str
    parameters: dict[str, str]


@dataclass(frozen=True)
class Outputs:
    bucket: str
    role_arn: str


def environment(name: str | None, root: Path = ENVIRONMENTS_DIR) -> Environment:
    """`--env`, else $PLEXUS_ENVIRONMENT, else development; names and region from its manifest when present,
    else the /plexus/{env}/ defaults and $AWS_DEFAULT_REGION."""
    name = name or os.environ.get("PLEXUS_ENVIRONMENT") or DEFAULT_ENVIRONMENT
    manifest = root / f"{name}.yaml"
    if manifest.is_file():
        from plexus_infra.manifest.validate import load_environment

        loaded = load_environment(manifest)
        return Environment(name, loaded.region, {o.key: o.parameter_name for o in loaded.outputs})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return Environment(name, region, {key: f"/plexus/{name}/{key}" for key in (BUCKET, ROLE)})


def read_outputs(env: Environment, ssm: object) -> Outputs:
    """The bucket name and training role ARN; overrides first, SSM for the rest (one call)."""
    from plexus_infra.aws import call

    values = {key: os.environ[var] for key, var in OVERRIDES.items() if os.environ.get(var)}
    wanted = {env.parameters[key]: key for key in (BUCKET, ROLE) if key not in values}
    if wanted:
        answer = call(ssm.get_parameters, f"outputs of environment {env.name}", Names=sorted(wanted)) or {}
        for parameter in answer.get("Parameters", []):
            values[wanted[parameter["Name"]]] = parameter["Value"]
    for key in (BUCKET, ROLE):
        if key not in values:
            raise PlexusError(
                f"environment {env.name} has no output {key} (SSM parameter {env.parameters[key]}; "
                f"or set {OVERRIDES[key]}); run `plexus-infra apply --env {env.name}` first"
            )
    return Outputs(bucket=values[BUCKET], role_arn=values[ROLE])
