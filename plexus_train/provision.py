"""SageMaker endpoints for a score: model → endpoint config → endpoint, on plexus_infra's plan contract.

Each resource is named by a hash of its content, so "same model and settings" means "same names" and a rerun
changes nothing; a new model (or new sizing) gives a new model and config, and the endpoint is updated to it;
once it serves the new config, the previous config and model are deleted. Names: `{stem}` for the endpoint,
`{stem}-m{hash}` for models and `{stem}-c{hash}` for configs (`names.name_stem`), so `delete` finds every one
this tool made for a score.

`Provisioner.plan` only reads (the model, the config, the endpoint and the config it serves now) and answers a
`plexus_infra.plan.Plan` whose changes carry the SageMaker calls they need (`diff` is pure); `apply` sends exactly
those calls, waits for InService, and only then sends the deletes of what the endpoint no longer serves. Which
model is served, and uploading it, is `model_source`'s business.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plexus_infra.core.aws import Clients, call, send
from plexus_infra.core.errors import PlexusError
from plexus_infra.environments import TrainingOutputs
from plexus_infra.plan import CREATE, DELETE, UPDATE, Call, Change, Plan, digest, noop
from plexus_train.images import image_uri
from plexus_train.locations import MODELS_DIR
from plexus_train.model_source import S3_OBJECT, ModelSource, find_model, upload, upload_changes
from plexus_train.names import content_hash, name_stem, sagemaker_name
from plexus_train.scorecards import Score
from plexus_train.waiting import StatusReporter, Waiter, wait

VARIANT = "AllTraffic"
ENDPOINT = Waiter(
    "the endpoint",
    status=lambda endpoint: endpoint["EndpointStatus"],
    terminal=("InService", "Failed", "OutOfService"),
    timeout=3600.0,
    interval=15.0,
)
NOT_FOUND = ("ValidationException",)  # SageMaker's answer for an unknown model, config or endpoint
TOOL = "plexus"  # the `tool` of a provisioning plan's JSON: plexus-infra refuses to apply it

# The kinds of a provisioning plan's changes (`{kind}.{name}` addresses), and what people call them.
MODEL_KIND, CONFIG_KIND, ENDPOINT_KIND = "sagemaker_model", "sagemaker_endpoint_config", "sagemaker_endpoint"
NOUNS = {MODEL_KIND: "model", CONFIG_KIND: "endpoint config", ENDPOINT_KIND: "endpoint", S3_OBJECT: "model archive"}
# Where a name follows an object not uploaded yet: its ETag, hence the hash, is known only after the upload.
AFTER_UPLOAD = "(after upload)"


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

    @property
    def known(self) -> bool:
        """Whether the names are real: False while the model they serve waits for its upload."""
        return AFTER_UPLOAD not in self.model_name


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


def endpoint_spec(score: Score, model_data: str, model_version: str | None, image: str, role_arn: str) -> EndpointSpec:
    """Pure: the requests for `score` serving `model_data`, whose version is its S3 ETag (None before its upload:
    the model and config are then named `{stem}-m(after upload)` and `{stem}-c(after upload)`)."""
    container = {"Image": image, "ModelDataUrl": model_data, "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    if model_version is None:
        model_name = f"{name_stem(score.path)}-m{AFTER_UPLOAD}"
    else:
        model_name = sagemaker_name(score.path, "m" + content_hash(container, model_version, role_arn))
    production = variant(score, model_name)
    if model_version is None:
        config_name = f"{name_stem(score.path)}-c{AFTER_UPLOAD}"
    else:
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


@dataclass(frozen=True)
class Observed:
    """What `Provisioner.observe` read, normalized (None: absent).

    + model, config: the desired model and endpoint config, by their names
    + endpoint: `EndpointConfigName` and `EndpointStatus` of the score's endpoint
    + served: the models of the config the endpoint serves now, when that is not the desired one
    """

    model: dict[str, Any] | None
    config: dict[str, Any] | None
    endpoint: dict[str, Any] | None
    served: tuple[str, ...] = ()

    def state(self) -> dict[str, Any]:
        return {"model": self.model, "config": self.config, "endpoint": self.endpoint, "served": self.served}


def address(kind: str, name: str) -> str:
    return f"{kind}.{name}"


def diff(score: Score, spec: EndpointSpec, observed: Observed) -> tuple[Change, ...]:
    """Pure: the changes from `observed` to `spec`, each with the calls that make it, in the order `apply` sends
    them: model, config, endpoint, then the deletes of the config (and its models) the endpoint stops serving."""
    container = spec.model["PrimaryContainer"]
    model = {"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"]}
    model["ExecutionRoleArn"] = spec.model["ExecutionRoleArn"]
    config = {"ModelNames": [v["ModelName"] for v in spec.config["ProductionVariants"]]}
    serving = {"EndpointConfigName": spec.config_name}
    # Named by their content: absent is created, present is exactly what is wanted.
    wanted = (
        (MODEL_KIND, spec.model, observed.model, model, "already exists (same image, model data and role)"),
        (CONFIG_KIND, spec.config, observed.config, config, "already exists"),
    )
    changes = [_created_unless_there(*resource) for resource in wanted]
    endpoint, where = observed.endpoint, address(ENDPOINT_KIND, spec.endpoint_name)
    request = {"EndpointName": spec.endpoint_name, "EndpointConfigName": spec.config_name}
    # Endpoint doesn't exist and we want it?
    if endpoint is None:
        create = Call("sagemaker", "CreateEndpoint", request, f"endpoint {spec.endpoint_name}")
        return (*changes, Change(where, CREATE, None, serving, tuple(serving), "does not exist", calls=(create,)))
    # Endpoint serves what we want?
    if endpoint["EndpointConfigName"] == spec.config_name:
        return (*changes, noop(where, endpoint, f"already serves {spec.config_name}"))
    old = endpoint["EndpointConfigName"]
    update = Call("sagemaker", "UpdateEndpoint", request, f"endpoint {spec.endpoint_name}")
    changes.append(Change(where, UPDATE, endpoint, serving, ("EndpointConfigName",), f"serves {old}", calls=(update,)))
    # What it served, when this tool made it, goes once it serves the new config.
    if made_here(score, "c").fullmatch(old):
        retired = f"superseded by {spec.config_name}"
        changes.append(deletion(CONFIG_KIND, old, retired, {"ModelNames": list(observed.served)}))
        changes += [
            deletion(MODEL_KIND, name, retired)
            for name in observed.served
            if name != spec.model_name and made_here(score, "m").fullmatch(name)
        ]
    return tuple(changes)


CREATES = {MODEL_KIND: ("CreateModel", "ModelName"), CONFIG_KIND: ("CreateEndpointConfig", "EndpointConfigName")}


def _created_unless_there(
    kind: str, request: dict[str, Any], observed: dict[str, Any] | None, desired: dict[str, Any], reason: str
) -> Change:
    """A model or config that `request` creates, unless it exists already (then a no-op for `reason`)."""
    operation, argument = CREATES[kind]
    name = request[argument]
    if observed is not None:
        return noop(address(kind, name), observed, reason)
    # SageMaker checks the model's execution role as it creates it: retried while a new role propagates.
    create = Call("sagemaker", operation, request, f"{NOUNS[kind]} {name}", assumes_role=kind == MODEL_KIND)
    return Change(address(kind, name), CREATE, None, desired, tuple(desired), "does not exist", calls=(create,))


DELETES = {
    ENDPOINT_KIND: ("DeleteEndpoint", "EndpointName"),
    CONFIG_KIND: ("DeleteEndpointConfig", "EndpointConfigName"),
    MODEL_KIND: ("DeleteModel", "ModelName"),
}


def deletion(kind: str, name: str, reason: str, before: dict[str, Any] | None = None) -> Change:
    """Deleting one SageMaker resource; already gone counts as deleted."""
    operation, argument = DELETES[kind]
    request = Call("sagemaker", operation, {argument: name}, f"{NOUNS[kind]} {name}", absent=NOT_FOUND)
    return Change(address(kind, name), DELETE, before or {}, None, (), reason, calls=(request,))


@dataclass(frozen=True)
class Provisioned:
    """+ model: the model served, and where it came from
    + plan: what was planned, and then applied
    """

    model: ModelSource
    plan: Plan

    @property
    def endpoint_name(self) -> str:
        return _endpoint_change(self.plan).address.split(".", 1)[1]


def _endpoint_change(plan: Plan) -> Change:
    return next(change for change in plan.changes if change.kind == ENDPOINT_KIND)


@dataclass
class Provisioner:
    """+ clients: the environment's region
    + outputs: the environment's bucket and role (the role also runs the model)
    + reporter: receives the endpoint's status transitions
    + environment: the environment's name (the plans say it)
    """

    clients: Clients
    outputs: TrainingOutputs
    reporter: StatusReporter
    environment: str
    models_root: Path = MODELS_DIR
    sleep: Callable[[float], None] = time.sleep
    _account: str | None = field(default=None, init=False, repr=False)

    def find(self, score: Score, explicit: str | None = None) -> ModelSource:
        """The model to serve (reads only; `model_source.find_model`), refusing a local-only score first."""
        variant(score, "")
        return find_model(self.clients, self.outputs.bucket, score, explicit, self.models_root)

    def provision(self, score: Score, model_s3_uri: str | None = None) -> Provisioned:
        """Create or update the score's endpoint so it serves the model; a rerun is a no-op."""
        source = upload(self.clients, self.find(score, model_s3_uri), self.reporter)
        plan = self.plan(score, source)
        self.apply(plan)
        return Provisioned(source, plan)

    def spec(self, score: Score, source: ModelSource) -> EndpointSpec:
        training = score.training
        image = image_uri(
            training.inference_image_uri,
            "inference",
            training.framework_version,
            self.clients.region,
            training.deployment.instance_type,
        )
        return endpoint_spec(score, source.uri, source.version, image, self.outputs.role_arn)

    def observe(self, score: Score, spec: EndpointSpec) -> Observed:
        """Reads only: the desired model and config (unless they wait for an upload), the endpoint, and the models
        of the config it serves when that is another this tool made (it goes once the endpoint moves on)."""
        model = config = None
        if spec.known:
            found = self._describe("describe_model", "ModelName", spec.model_name)
            if found is not None:
                model = {k: found["PrimaryContainer"].get(k) for k in ("Image", "ModelDataUrl")}
                model["ExecutionRoleArn"] = found.get("ExecutionRoleArn")
            config = self._config_models(spec.config_name)
        endpoint = self._describe("describe_endpoint", "EndpointName", spec.endpoint_name)
        if endpoint is None:
            return Observed(model, config, None)
        endpoint = {key: endpoint[key] for key in ("EndpointConfigName", "EndpointStatus")}
        served, now = (), endpoint["EndpointConfigName"]
        if now != spec.config_name and made_here(score, "c").fullmatch(now):
            served = tuple((self._config_models(now) or {}).get("ModelNames", ()))
        return Observed(model, config, endpoint, served)

    def plan(self, score: Score, source: ModelSource) -> Plan:
        """What provisioning `source` would change (reads only): its upload, when it waits for one, then the
        model, config and endpoint changes with their calls."""
        spec = self.spec(score, source)
        observed = self.observe(score, spec)
        changes = (*upload_changes(source), *diff(score, spec, observed))
        state = {"model_data": {"uri": source.uri, "etag": source.version}, **observed.state()}
        manifest = Path(score.source)
        return Plan(
            environment=self.environment,
            manifest=score.source,
            manifest_digest=hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else "",
            account=self.account,
            region=self.clients.region,
            operation="apply",
            changes=changes,
            observed_digest=digest(state),
            resource_digests=tuple((c.address, digest(c.before)) for c in changes if c.before is not None),
            tool=TOOL,
        )

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.clients.identity().account
        return self._account

    def apply(self, plan: Plan) -> None:
        """Send exactly the plan's calls: the creates and the endpoint's create or update, then, once the endpoint
        is InService with the planned config, the deletes of what it no longer serves."""
        if any(change.kind == S3_OBJECT for change in plan.pending):
            raise PlexusError("this plan uploads a model first: provision without --plan uploads it, then plans again")
        endpoint = _endpoint_change(plan)
        writes = [change for change in plan.pending if "delete" not in change.actions]
        self._send(writes)
        if writes or (endpoint.before or {}).get("EndpointStatus") != "InService":
            name, wanted = endpoint.address.split(".", 1)[1], endpoint.after["EndpointConfigName"]
            served = self._wait(name)
            if served["EndpointConfigName"] != wanted:  # a failed update rolls back, InService again
                reason = served.get("FailureReason") or "no reason given"
                now = served["EndpointConfigName"]
                raise PlexusError(f"endpoint {name} still serves {now}, not {wanted}: {reason}")
        self._send(change for change in plan.pending if "delete" in change.actions)

    def status(self, score: Score) -> dict[str, Any] | None:
        """The endpoint's description plus its config's variants, or None when there is no endpoint."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        if endpoint is None:
            return None
        config = self._describe("describe_endpoint_config", "EndpointConfigName", endpoint["EndpointConfigName"])
        return {**endpoint, "ProductionVariants": (config or {}).get("ProductionVariants", [])}

    def delete(self, score: Score) -> tuple[Change, ...]:
        """Delete the endpoint, its config and its models, and every other config and model this tool made for
        the score (earlier versions left behind); what is already gone counts as deleted. Answers the deletes."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        changes, configs, models = [], [], []
        if endpoint is not None:
            configs.append(endpoint["EndpointConfigName"])
            models += (self._config_models(configs[0]) or {}).get("ModelNames", [])
            changes.append(deletion(ENDPOINT_KIND, name, "deleted with its score", {"EndpointConfigName": configs[0]}))
        configs += [c for c in self._names(score, "list_endpoint_configs", "EndpointConfigs", "c") if c not in configs]
        models += [m for m in self._names(score, "list_models", "Models", "m") if m not in models]
        changes += [deletion(CONFIG_KIND, config, "made for the score") for config in configs]
        changes += [deletion(MODEL_KIND, model, "made for the score") for model in models]
        self._send(changes)
        return tuple(changes)

    def _send(self, changes: Iterable[Change]) -> None:
        for change in changes:
            for request in change.calls:
                send(self.clients, request, sleep=self.sleep)

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

    def _config_models(self, name: str) -> dict[str, Any] | None:
        """An endpoint config as its models' names, or None when it does not exist."""
        config = self._describe("describe_endpoint_config", "EndpointConfigName", name)
        if config is None:
            return None
        return {"ModelNames": [v["ModelName"] for v in config.get("ProductionVariants", [])]}

    def _describe(self, method: str, argument: str, name: str) -> dict[str, Any] | None:
        return call(getattr(self.clients.sagemaker, method), name, absent=NOT_FOUND, **{argument: name})

    def _wait(self, name: str) -> dict[str, Any]:
        describe = lambda: call(self.clients.sagemaker.describe_endpoint, name, EndpointName=name)  # noqa: E731
        endpoint = wait(ENDPOINT, describe, self.reporter.status, sleep=self.sleep)
        if endpoint["EndpointStatus"] != "InService":
            raise PlexusError(f"endpoint {name} is {endpoint['EndpointStatus']}: {endpoint.get('FailureReason', '')}")
        return endpoint
