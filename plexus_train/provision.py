"""SageMaker endpoints for a score: model → endpoint config → endpoint, idempotently.

Each resource is named by a hash of its content, so "same model and settings" means "same names" and a rerun
changes nothing; a new model (or new sizing) gives a new model and config, and the endpoint is updated to it;
once it serves the new config, the previous config and model are deleted. Reads first, then the writes that
differ, then a wait for InService. Names: `{stem}` for the endpoint, `{stem}-m{hash}` for models and
`{stem}-c{hash}` for configs (`names.name_stem`), so `delete` finds every one this tool made for a score.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plexus_infra.core.aws import call, upload_file
from plexus_infra.core.errors import ApplyError, PlexusError
from plexus_infra.environments import TrainingOutputs
from plexus_train.images import image_uri
from plexus_train.names import content_hash, name_stem, sagemaker_name
from plexus_train.packaging import write_tarball
from plexus_train.platforms.local import MODELS_DIR, model_dir
from plexus_train.platforms.sagemaker import model_key, split_s3_uri
from plexus_train.scorecards import Score
from plexus_train.waiting import Waiter, wait

VARIANT = "AllTraffic"
ENDPOINT = Waiter(
    "the endpoint",
    status=lambda endpoint: endpoint["EndpointStatus"],
    terminal=("InService", "Failed", "OutOfService"),
    timeout=3600.0,
    interval=15.0,
)
NOT_FOUND = ("ValidationException",)  # SageMaker's answer for an unknown model, config or endpoint


@dataclass(frozen=True)
class EndpointSpec:
    """The desired model, endpoint config and endpoint, as SageMaker requests."""

    endpoint_name: str
    model: dict[str, Any]
    config: dict[str, Any]

    @property
    def model_name(self) -> str:
        return self.model["ModelName"]

    @property
    def config_name(self) -> str:
        return self.config["EndpointConfigName"]


@dataclass
class ProvisionResult:
    """+ changes: what was written, in order
    + noops: what already matched, with why
    """

    endpoint_name: str
    model: str = ""
    changes: list[str] = field(default_factory=list)
    noops: list[str] = field(default_factory=list)


DIGEST_METADATA = "plexus-model-sha256"  # S3 user metadata: the tree_digest of the local artifacts uploaded
UPLOAD_LOCAL, USE_BUCKET = "upload local", "use bucket"


@dataclass(frozen=True)
class LocalModel:
    """+ directory: the local artifacts, models/{sc}/{s}/
    + digest: their `packaging.tree_digest` (equal digests, equal model.tar.gz)
    + modified: the newest file's mtime (seconds since the epoch), i.e. when training wrote them
    """

    directory: Path
    digest: str
    modified: float


@dataclass(frozen=True)
class ModelSource:
    """+ uri: the model.tar.gz the endpoint serves
    + version: its S3 ETag (part of the model's name, so a new object gives a new model and config)
    + origin: where it came from and why it was chosen, one line for people
    """

    uri: str
    version: str
    origin: str


def choose_model(local: LocalModel | None, stored: dict[str, Any] | None) -> tuple[str, str]:
    """Pure: (UPLOAD_LOCAL or USE_BUCKET, why) given the local artifacts (None when there are none) and the head_object
    answer for the bucket's models/{sc}/{s}/model.tar.gz (None when absent; never both None).

    An object this tool uploaded from local artifacts carries their digest (DIGEST_METADATA): a different
    local digest means a retrain, so the new artifacts replace it. An object without one came from a SageMaker
    job (`plexus train --platform sagemaker` copies it there): whichever was trained last is served.

    Example: `choose_model(None, {"ETag": '"e"'}) == (USE_BUCKET, "no local artifacts")`
    """
    # No local model: serve the bucket's, whatever made it.
    if local is None:
        return USE_BUCKET, "no local artifacts"
    # Local model and nothing in the bucket yet?
    if stored is None:
        return UPLOAD_LOCAL, "the bucket holds no model yet"
    uploaded = (stored.get("Metadata") or {}).get(DIGEST_METADATA)
    # The bucket holds exactly these artifacts?
    if uploaded == local.digest:
        return USE_BUCKET, f"the local artifacts, uploaded earlier (sha256 {local.digest[:12]})"
    # The bucket holds earlier local artifacts: retrained since?
    if uploaded is not None:
        return (
            UPLOAD_LOCAL,
            f"the local artifacts changed since their upload (sha256 {uploaded[:12]} → {local.digest[:12]})",
        )
    # The bucket holds a SageMaker job's model: trained before or after the local one?
    if local.modified > stored["LastModified"].timestamp():
        return (
            UPLOAD_LOCAL,
            f"the local artifacts are newer than the bucket's model (a SageMaker job's, {_when(stored)})",
        )
    return USE_BUCKET, (
        f"a SageMaker job's model ({_when(stored)}), newer than the local artifacts in {local.directory}/, "
        "which are not used"
    )


def _when(stored: dict[str, Any]) -> str:
    return f"stored {stored['LastModified'].strftime('%Y-%m-%d %H:%M:%S %Z').strip()}"


def local_model(directory: Path) -> LocalModel | None:
    """The local artifacts in `directory`, or None when training has not written them (no config.json)."""
    from plexus_train.packaging import packaged_files, tree_digest

    if not (directory / "config.json").is_file():
        return None
    modified = max(path.stat().st_mtime for path in packaged_files(directory))
    return LocalModel(directory, tree_digest(directory), modified)


def endpoint_name(score: Score) -> str:
    return sagemaker_name(score.path)


def made_here(score: Score, kind: str) -> re.Pattern[str]:
    """The names this tool gives a score's models (`kind` "m") or endpoint configs ("c"), and only those: a
    longer stem of another score never matches, since the content hash must end the name."""
    return re.compile(rf"{re.escape(name_stem(score.path))}-{kind}[0-9a-f]{{10}}")


def variant(score: Score, model_name: str) -> dict[str, Any]:
    """The production variant for the score's deployment target."""
    target, sizing = score.training.deployment_target, score.training.deployment
    if target == "sagemaker_serverless":
        return {
            "VariantName": VARIANT,
            "ModelName": model_name,
            "ServerlessConfig": {
                "MemorySizeInMB": sizing.serverless_memory_mb,
                "MaxConcurrency": sizing.serverless_max_concurrency,
            },
        }
    if target == "sagemaker_realtime":
        return {
            "VariantName": VARIANT,
            "ModelName": model_name,
            "InstanceType": sizing.instance_type,
            "InitialInstanceCount": sizing.instance_count,
        }
    raise PlexusError(
        f"{score.source}: score {score.name!r} deploys locally (training.deployment_target: {target}); "
        "set sagemaker_serverless or sagemaker_realtime to provision an endpoint"
    )


def endpoint_spec(score: Score, model_data: str, model_version: str, image: str, role_arn: str) -> EndpointSpec:
    """Pure: the requests for `score` serving `model_data` (whose version is its S3 ETag)."""
    container = {"Image": image, "ModelDataUrl": model_data, "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    model_name = sagemaker_name(score.path, "m" + content_hash(container, model_version, role_arn))
    production = variant(score, model_name)
    config_name = sagemaker_name(score.path, "c" + content_hash(production))
    return EndpointSpec(
        endpoint_name=endpoint_name(score),
        model={
            "ModelName": model_name,
            "PrimaryContainer": container,
            "ExecutionRoleArn": role_arn,
            "Tags": [{"Key": "plexus:score", "Value": score.path}],
        },
        config={
            "EndpointConfigName": config_name,
            "ProductionVariants": [production],
            "Tags": [{"Key": "plexus:score", "Value": score.path}],
        },
    )


@dataclass
class Provisioner:
    """+ clients: plexus_infra.core.aws.Clients
    + outputs: the environment's bucket and role (the role also runs the model)
    + reporter: a progress.StatusReporter
    """

    clients: Any
    outputs: TrainingOutputs
    reporter: Any
    models_root: Path = MODELS_DIR
    sleep: Callable[[float], None] = time.sleep

    def provision(self, score: Score, model_s3_uri: str | None = None) -> ProvisionResult:
        """Create or update the score's endpoint so it serves the model; a rerun is a no-op."""
        variant(score, "")  # refuse a local-only score before touching anything
        source = self.model_source(score, model_s3_uri)
        model_data = source.uri
        training = score.training
        image = image_uri(
            training.inference_image_uri,
            "inference",
            training.framework_version,
            self.clients.region,
            training.deployment.instance_type,
        )
        spec = endpoint_spec(score, model_data, source.version, image, self.outputs.role_arn)
        result = ProvisionResult(spec.endpoint_name, model=source.origin)
        sagemaker = self.clients.sagemaker
        # Model doesn't exist and we want it?
        if self._describe("describe_model", "ModelName", spec.model_name) is None:
            call(sagemaker.create_model, f"model {spec.model_name}", error=ApplyError, **spec.model)
            result.changes.append(f"created model {spec.model_name} ({model_data})")
        else:
            result.noops.append(f"model {spec.model_name} already exists (same image, model data and role)")
        # Config doesn't exist and we want it?
        if self._describe("describe_endpoint_config", "EndpointConfigName", spec.config_name) is None:
            call(
                sagemaker.create_endpoint_config, f"endpoint config {spec.config_name}", error=ApplyError, **spec.config
            )
            result.changes.append(f"created endpoint config {spec.config_name}")
        else:
            result.noops.append(f"endpoint config {spec.config_name} already exists")
        endpoint = self._describe("describe_endpoint", "EndpointName", spec.endpoint_name)
        if endpoint is None:
            call(
                sagemaker.create_endpoint,
                f"endpoint {spec.endpoint_name}",
                error=ApplyError,
                EndpointName=spec.endpoint_name,
                EndpointConfigName=spec.config_name,
            )
            result.changes.append(f"created endpoint {spec.endpoint_name}")
        elif endpoint["EndpointConfigName"] != spec.config_name:
            call(
                sagemaker.update_endpoint,
                f"endpoint {spec.endpoint_name}",
                error=ApplyError,
                EndpointName=spec.endpoint_name,
                EndpointConfigName=spec.config_name,
            )
            result.changes.append(
                f"updated endpoint {spec.endpoint_name}: {endpoint['EndpointConfigName']} → {spec.config_name}"
            )
        else:
            result.noops.append(f"endpoint {spec.endpoint_name} already serves {spec.config_name}")
        if result.changes or endpoint is None or endpoint["EndpointStatus"] != "InService":
            served = self._wait(spec.endpoint_name)
            if served["EndpointConfigName"] != spec.config_name:  # a failed update rolls back, InService again
                reason = served.get("FailureReason") or "no reason given"
                raise PlexusError(
                    f"endpoint {spec.endpoint_name} still serves {served['EndpointConfigName']}, "
                    f"not {spec.config_name}: {reason}"
                )
        if endpoint is not None and endpoint["EndpointConfigName"] != spec.config_name:
            result.changes += self._retire(score, endpoint["EndpointConfigName"], keep=spec.model_name)
        return result

    def _retire(self, score: Score, config_name: str, keep: str) -> list[str]:
        """Delete a config the endpoint no longer serves, and its models but `keep`, when this tool made them."""
        if not made_here(score, "c").fullmatch(config_name):
            return []
        config = self._describe("describe_endpoint_config", "EndpointConfigName", config_name) or {}
        models = [v["ModelName"] for v in config.get("ProductionVariants", [])]
        steps = [("delete_endpoint_config", "EndpointConfigName", config_name, "endpoint config")]
        steps += [
            ("delete_model", "ModelName", model, "model")
            for model in models
            if model != keep and made_here(score, "m").fullmatch(model)
        ]
        return [f"deleted {done}" for done in self._delete_all(steps)]

    def model_source(self, score: Score, explicit: str | None) -> ModelSource:
        """The model to serve: the given URI, else the local artifacts or the bucket's
        models/{sc}/{s}/model.tar.gz, as `choose_model` decides; local artifacts that are not in the bucket
        yet are packaged and uploaded there (with their digest as metadata) first."""
        s3, bucket = self.clients.s3, self.outputs.bucket
        if explicit:
            found = self._head(explicit)
            if found is None:
                raise PlexusError(f"--model-s3-uri {explicit}: no such object")
            return ModelSource(explicit, found["ETag"], f"{explicit} (--model-s3-uri)")
        canonical = f"s3://{bucket}/{model_key(score)}"
        local = local_model(model_dir(score, self.models_root))
        found = self._head(canonical)
        if local is None and found is None:
            raise PlexusError(
                f"no model for {score.path}: not at {canonical}, nor in {model_dir(score, self.models_root)}/; "
                "run `plexus train` first"
            )
        choice, why = choose_model(local, found)
        if choice == USE_BUCKET or local is None:  # choose_model uploads only local artifacts
            return ModelSource(canonical, found["ETag"], f"{canonical}: {why}")
        with tempfile.TemporaryDirectory() as staging:
            tarball = write_tarball(local.directory, Path(staging) / "model.tar.gz")
            self.reporter.status(f"uploading {local.directory}/ to {canonical}")
            upload_file(s3, tarball, bucket, model_key(score), metadata={DIGEST_METADATA: local.digest})
        answer = call(s3.head_object, canonical, error=ApplyError, Bucket=bucket, Key=model_key(score))
        return ModelSource(canonical, answer["ETag"], f"{canonical}: uploaded from {local.directory}/, {why}")

    def status(self, score: Score) -> dict[str, Any] | None:
        """The endpoint's description plus its config's variants, or None when there is no endpoint."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        if endpoint is None:
            return None
        config = self._describe("describe_endpoint_config", "EndpointConfigName", endpoint["EndpointConfigName"])
        return {**endpoint, "ProductionVariants": (config or {}).get("ProductionVariants", [])}

    def delete(self, score: Score) -> list[str]:
        """Delete the endpoint, its config and its models, and every other config and model this tool made for
        the score (earlier versions left behind); what is already gone counts as deleted."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        configs, models = [], []
        if endpoint is not None:
            configs.append(endpoint["EndpointConfigName"])
            config = self._describe("describe_endpoint_config", "EndpointConfigName", configs[0]) or {}
            models += [v["ModelName"] for v in config.get("ProductionVariants", [])]
        configs += [c for c in self._names(score, "list_endpoint_configs", "EndpointConfigs", "c") if c not in configs]
        models += [m for m in self._names(score, "list_models", "Models", "m") if m not in models]
        steps = [("delete_endpoint", "EndpointName", name, "endpoint")] if endpoint is not None else []
        steps += [("delete_endpoint_config", "EndpointConfigName", c, "endpoint config") for c in configs]
        steps += [("delete_model", "ModelName", m, "model") for m in models]
        return self._delete_all(steps)

    def _names(self, score: Score, method: str, field: str, kind: str) -> list[str]:
        """Names of the score's models or configs (by this tool's naming scheme), every page, sorted."""
        pattern, stem = made_here(score, kind), name_stem(score.path)
        key = "ModelName" if kind == "m" else "EndpointConfigName"
        found: list[str] = []
        page: dict[str, Any] = {}
        while True:
            more = {"NextToken": page["NextToken"]} if page.get("NextToken") else {}
            lister = getattr(self.clients.sagemaker, method)
            page = call(lister, f"{field} named {stem}-*", NameContains=stem, MaxResults=100, **more) or {}
            found += [item[key] for item in page.get(field, []) if pattern.fullmatch(item[key])]
            if not page.get("NextToken"):
                return sorted(found)

    def _delete_all(self, steps: list[tuple[str, str, str, str]]) -> list[str]:
        deleted = []
        for method, argument, value, kind in steps:
            sagemaker = self.clients.sagemaker
            call(getattr(sagemaker, method), f"{kind} {value}", absent=NOT_FOUND, error=ApplyError, **{argument: value})
            deleted.append(f"{kind} {value}")
        return deleted

    def _describe(self, method: str, argument: str, name: str) -> dict[str, Any] | None:
        return call(getattr(self.clients.sagemaker, method), name, absent=NOT_FOUND, **{argument: name})

    def _head(self, uri: str) -> dict[str, Any] | None:
        bucket, key = split_s3_uri(uri)
        return call(self.clients.s3.head_object, uri, absent=("404", "NoSuchKey"), Bucket=bucket, Key=key)

    def _wait(self, name: str) -> dict[str, Any]:
        describe = lambda: call(self.clients.sagemaker.describe_endpoint, name, EndpointName=name)  # noqa: E731
        endpoint = wait(ENDPOINT, describe, self.reporter.status, sleep=self.sleep)
        if endpoint["EndpointStatus"] != "InService":
            raise PlexusError(f"endpoint {name} is {endpoint['EndpointStatus']}: {endpoint.get('FailureReason', '')}")
        return endpoint
