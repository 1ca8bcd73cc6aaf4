"""SageMaker endpoints for a score: model → endpoint config → endpoint, on plexus_infra's plan contract.

Each resource is named by a hash of its content, so "same model and settings" means "same names" and a rerun
changes nothing; a new model (or new sizing) gives a new model and config, and the endpoint is updated to it;
once it serves the new config, the previous config and model are deleted. Names: `{stem}` for the endpoint,
`{stem}-m{hash}` for models and `{stem}-c{hash}` for configs (`names.name_stem`), so `delete` finds every one
this tool made for a score.

A realtime endpoint whose `max_instances` passes its `min_instances` also gets Application Auto Scaling: a
scalable target on its variant's DesiredInstanceCount (`autoscaling_target.{endpoint}/AllTraffic`) and a
target-tracking policy on SageMakerVariantInvocationsPerInstance (`autoscaling_policy.{endpoint}-invocations`),
planned and applied like the rest; `delete` removes them first.

`Provisioner.plan` only reads (the model, the config, the endpoint and the config it serves now, the scalable
target and the policy) and answers a `plexus_infra.plan.Plan` whose changes carry the AWS calls they need (`diff`
is pure); `apply` sends exactly those calls, waits for InService, then registers the autoscaling and only then
sends the deletes of what the endpoint no longer serves. Which model is served, and uploading it, is
`model_source`'s business.
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
from plexus_infra.plan import CREATE, DELETE, REPLACE, UPDATE, Call, Change, Plan, digest, noop
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
TARGET_KIND, POLICY_KIND = "autoscaling_target", "autoscaling_policy"
NOUNS = {
    MODEL_KIND: "model",
    CONFIG_KIND: "endpoint config",
    ENDPOINT_KIND: "endpoint",
    S3_OBJECT: "model archive",
    TARGET_KIND: "scalable target",
    POLICY_KIND: "scaling policy",
}
# Application Auto Scaling's names for a SageMaker variant's instance count and the metric it tracks.
SCALING_NAMESPACE, SCALABLE_DIMENSION = "sagemaker", "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
SCALING_ABSENT = ("ObjectNotFoundException",)
# Where a name follows an object not uploaded yet: its ETag, hence the hash, is known only after the upload.
AFTER_UPLOAD = "(after upload)"


@dataclass(frozen=True)
class EndpointSpec:
    """The desired model, endpoint config and endpoint, as SageMaker requests, and the endpoint's autoscaling
    (None: none wanted)."""

    endpoint_name: str
    model: dict[str, Any]
    config: dict[str, Any]
    scaling: ScalingSpec | None = None

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


@dataclass(frozen=True)
class ScalingSpec:
    """Application Auto Scaling for a realtime endpoint's variant: the scalable target (its instance count between
    the bounds) and a target-tracking policy on invocations per instance, as their requests."""

    target: dict[str, Any]
    policy: dict[str, Any]

    @property
    def policy_name(self) -> str:
        return self.policy["PolicyName"]


def scaling_ids(endpoint: str) -> dict[str, str]:
    """What names a variant's scalable target: `endpoint/{endpoint}/variant/AllTraffic`, its instance count."""
    resource = f"endpoint/{endpoint}/variant/{VARIANT}"
    return {"ServiceNamespace": SCALING_NAMESPACE, "ResourceId": resource, "ScalableDimension": SCALABLE_DIMENSION}


def policy_name(endpoint: str) -> str:
    return f"{endpoint}-invocations"


def scaling_spec(score: Score, endpoint: str) -> ScalingSpec | None:
    """Pure: the autoscaling of a realtime endpoint whose max_instances passes its min_instances, else None."""
    sizing = score.deployment
    if not sizing.autoscaled:
        return None
    ids = scaling_ids(endpoint)
    target = {**ids, "MinCapacity": sizing.min_instances, "MaxCapacity": sizing.most_instances}
    tracking = {
        "TargetValue": float(sizing.target_invocations),
        "PredefinedMetricSpecification": {"PredefinedMetricType": INVOCATIONS_METRIC},
        "ScaleInCooldown": sizing.scale_in_cooldown,
        "ScaleOutCooldown": sizing.scale_out_cooldown,
    }
    policy = {
        "PolicyName": policy_name(endpoint),
        **ids,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": tracking,
    }
    return ScalingSpec(target, policy)


def scaling_state(spec: ScalingSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """What of the target and the policy is compared with what is live (`Provisioner.observe` reads the same)."""
    tracking = spec.policy["TargetTrackingScalingPolicyConfiguration"]
    target = {key: spec.target[key] for key in ("MinCapacity", "MaxCapacity")}
    policy = {
        "TargetValue": tracking["TargetValue"],
        "MetricType": INVOCATIONS_METRIC,
        "ScaleInCooldown": tracking["ScaleInCooldown"],
        "ScaleOutCooldown": tracking["ScaleOutCooldown"],
    }
    return target, policy


def made_here(score: Score, kind: str) -> re.Pattern[str]:
    """The names this tool gives a score's models (`kind` "m") or endpoint configs ("c"), and only those: a
    longer stem of another score never matches, since the content hash must end the name."""
    return re.compile(rf"{re.escape(name_stem(score.path))}-{kind}[0-9a-f]{{10}}")


def variant(score: Score, model_name: str) -> dict[str, Any]:
    """The production variant for the score's `deployment:` (serverless unless it says realtime)."""
    sizing = score.deployment
    if sizing.type == "serverless":
        return {
            "VariantName": VARIANT,
            "ModelName": model_name,
            "ServerlessConfig": {"MemorySizeInMB": sizing.memory_mb, "MaxConcurrency": sizing.max_concurrency},
        }
    if sizing.type == "realtime":
        if sizing.most_instances < sizing.min_instances:
            raise PlexusError(
                f"score {score.name!r}: max_instances {sizing.most_instances} is below min_instances "
                f"{sizing.min_instances}"
            )
        return {
            "VariantName": VARIANT,
            "ModelName": model_name,
            "InstanceType": sizing.instance_type,
            "InitialInstanceCount": sizing.min_instances,
        }
    raise PlexusError(
        f"{score.source}: score {score.name!r} deploys locally (training.deployment_target: local); set "
        "deployment.type (serverless or realtime) or give --deployment-type to provision an endpoint"
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
        scaling=scaling_spec(score, endpoint_name(score)),
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
    + served_instance_type: the instance type of the variant it serves now (None: serverless, or no endpoint)
    + target, policy: the variant's scalable target and this tool's scaling policy on it (`scaling_state`'s shape)
    """

    model: dict[str, Any] | None
    config: dict[str, Any] | None
    endpoint: dict[str, Any] | None
    served: tuple[str, ...] = ()
    served_instance_type: str | None = None
    target: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config,
            "endpoint": self.endpoint,
            "served": self.served,
            "served_instance_type": self.served_instance_type,
            "autoscaling": {"target": self.target, "policy": self.policy},
        }


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
        changes.append(Change(where, CREATE, None, serving, tuple(serving), "does not exist", calls=(create,)))
        return (*changes, *diff_scaling(spec, observed, moved=False))
    # Endpoint serves what we want?
    if endpoint["EndpointConfigName"] == spec.config_name:
        changes.append(noop(where, endpoint, f"already serves {spec.config_name}"))
        return (*changes, *diff_scaling(spec, observed, moved=False))
    old = endpoint["EndpointConfigName"]
    update = Call("sagemaker", "UpdateEndpoint", request, f"endpoint {spec.endpoint_name}")
    changes.append(Change(where, UPDATE, endpoint, serving, ("EndpointConfigName",), f"serves {old}", calls=(update,)))
    wanted_type = spec.config["ProductionVariants"][0].get("InstanceType")
    changes += diff_scaling(spec, observed, moved=wanted_type != observed.served_instance_type)
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


# Application Auto Scaling's removals: sent before the endpoint changes (AWS refuses to update an endpoint whose
# autoscaled variant changes its instance type), policy before target.
REMOVALS = ("DeleteScalingPolicy", "DeregisterScalableTarget")


def diff_scaling(spec: EndpointSpec, observed: Observed, *, moved: bool) -> list[Change]:
    """Pure: the scalable target and the policy, each created, updated (RegisterScalableTarget and
    PutScalingPolicy update in place), replaced or deleted. `moved`: the endpoint is updated to another instance
    type (or kind) of variant, which AWS allows only without autoscaling: what exists is then removed first and,
    when still wanted, made again once the endpoint is InService."""
    endpoint = spec.endpoint_name
    if spec.scaling is None:
        why = "the endpoint does not autoscale (realtime with max_instances above min_instances does)"
        return scaling_removals(endpoint, observed.target, observed.policy, why)
    wanted_target, wanted_policy = scaling_state(spec.scaling)
    writes = {
        TARGET_KIND: Call(
            "application-autoscaling", "RegisterScalableTarget", spec.scaling.target, _target_at(endpoint)
        ),
        POLICY_KIND: Call("application-autoscaling", "PutScalingPolicy", spec.scaling.policy, _policy_at(endpoint)),
    }
    changes = []
    for kind, at, before, after in (
        (TARGET_KIND, _target_at(endpoint), observed.target, wanted_target),
        (POLICY_KIND, _policy_at(endpoint), observed.policy, wanted_policy),
    ):
        changed = tuple(name for name, value in after.items() if (before or {}).get(name) != value)
        # Nothing there yet?
        if before is None:
            changes.append(Change(at, CREATE, None, after, tuple(after), "does not exist", calls=(writes[kind],)))
        # The endpoint moves to another instance type: removed before, made again after.
        elif moved:
            why = "the endpoint changes instance type, which AWS allows only without autoscaling"
            calls = (_removal(kind, endpoint), writes[kind])
            changes.append(Change(at, REPLACE, before, after, tuple(after), why, calls=calls))
        elif changed:
            why = "differs from the score's deployment"
            changes.append(Change(at, UPDATE, before, after, changed, why, calls=(writes[kind],)))
        else:
            changes.append(noop(at, before, f"already {_scaling_summary(kind, before)}"))
    return changes


def scaling_removals(
    endpoint: str, target: dict[str, Any] | None, policy: dict[str, Any] | None, why: str
) -> list[Change]:
    """Deleting the policy, then the scalable target, of those that exist; already gone counts as deleted."""
    gone = [(POLICY_KIND, _policy_at(endpoint), policy), (TARGET_KIND, _target_at(endpoint), target)]
    return [
        Change(at, DELETE, before, None, (), why, calls=(_removal(kind, endpoint),))
        for kind, at, before in gone
        if before
    ]


def _target_at(endpoint: str) -> str:
    return address(TARGET_KIND, f"{endpoint}/{VARIANT}")


def _policy_at(endpoint: str) -> str:
    return address(POLICY_KIND, policy_name(endpoint))


def _removal(kind: str, endpoint: str) -> Call:
    ids = scaling_ids(endpoint)
    if kind == TARGET_KIND:
        return Call(
            "application-autoscaling", "DeregisterScalableTarget", ids, _target_at(endpoint), absent=SCALING_ABSENT
        )
    request = {"PolicyName": policy_name(endpoint), **ids}
    return Call("application-autoscaling", "DeleteScalingPolicy", request, _policy_at(endpoint), absent=SCALING_ABSENT)


def _scaling_summary(kind: str, state: dict[str, Any]) -> str:
    if kind == TARGET_KIND:
        return f"scales {state['MinCapacity']}–{state['MaxCapacity']} instances"
    return f"tracks {state['TargetValue']:g} invocations per instance"


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
            score.deployment.instance_type,
        )
        return endpoint_spec(score, source.uri, source.version, image, self.outputs.role_arn)

    def observe(self, score: Score, spec: EndpointSpec) -> Observed:
        """Reads only: the desired model and config (unless they wait for an upload), the endpoint, the config it
        serves now (its models, when this tool made it, go once the endpoint moves on; its instance type), and the
        variant's scalable target and scaling policy (when it is or will be a variant with instances)."""
        model = config = None
        if spec.known:
            found = self._describe("describe_model", "ModelName", spec.model_name)
            if found is not None:
                model = {k: found["PrimaryContainer"].get(k) for k in ("Image", "ModelDataUrl")}
                model["ExecutionRoleArn"] = found.get("ExecutionRoleArn")
            config = self._config_models(spec.config_name)
        endpoint = self._describe("describe_endpoint", "EndpointName", spec.endpoint_name)
        if endpoint is None:
            target, policy = self._scaling(spec.endpoint_name) if spec.scaling else (None, None)
            return Observed(model, config, None, target=target, policy=policy)
        endpoint = {key: endpoint[key] for key in ("EndpointConfigName", "EndpointStatus")}
        served, now = (), endpoint["EndpointConfigName"]
        serving = (self._config_models(now) or {}) if now != spec.config_name else (config or {})
        if now != spec.config_name and made_here(score, "c").fullmatch(now):
            served = tuple(serving.get("ModelNames", ()))
        instance_type = serving.get("InstanceType")
        # Instance counts scale only on a variant with instances: a serverless one has no such target to read.
        scaled = spec.scaling is not None or instance_type is not None
        target, policy = self._scaling(spec.endpoint_name) if scaled else (None, None)
        return Observed(model, config, endpoint, served, instance_type, target, policy)

    def _scaling(self, endpoint: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The variant's scalable target and this tool's policy on it, as `scaling_state` shapes them."""
        ids = scaling_ids(endpoint)
        autoscaling = self.clients.autoscaling
        targets = call(
            autoscaling.describe_scalable_targets,
            f"scalable target {ids['ResourceId']}",
            ServiceNamespace=SCALING_NAMESPACE,
            ResourceIds=[ids["ResourceId"]],
            ScalableDimension=SCALABLE_DIMENSION,
        )
        found = [t for t in (targets or {}).get("ScalableTargets", []) if t["ResourceId"] == ids["ResourceId"]]
        target = {key: found[0][key] for key in ("MinCapacity", "MaxCapacity")} if found else None
        policies = call(
            autoscaling.describe_scaling_policies,
            f"scaling policy {policy_name(endpoint)}",
            PolicyNames=[policy_name(endpoint)],
            **ids,
        )
        mine = [p for p in (policies or {}).get("ScalingPolicies", []) if p["PolicyName"] == policy_name(endpoint)]
        policy = None
        if mine:
            tracking = mine[0].get("TargetTrackingScalingPolicyConfiguration", {})
            metric = tracking.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            policy = {
                "TargetValue": tracking.get("TargetValue"),
                "MetricType": metric,
                "ScaleInCooldown": tracking.get("ScaleInCooldown"),
                "ScaleOutCooldown": tracking.get("ScaleOutCooldown"),
            }
        return target, policy

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
        """Send exactly the plan's calls: first the autoscaling removals (AWS refuses to move an autoscaled variant
        to another instance type), then the creates and the endpoint's create or update; once the endpoint is
        InService with the planned config, the autoscaling it should have, then the deletes of what it no
        longer serves."""
        if any(change.kind == S3_OBJECT for change in plan.pending):
            raise PlexusError("this plan uploads a model first: provision without --plan uploads it, then plans again")
        endpoint = _endpoint_change(plan)
        scaling = [change for change in plan.pending if change.kind in (POLICY_KIND, TARGET_KIND)]
        self._send_calls(
            request for kind in (POLICY_KIND, TARGET_KIND) for change in scaling if change.kind == kind
            for request in change.calls if request.operation in REMOVALS
        )  # fmt: skip
        others = [change for change in plan.pending if change not in scaling]
        writes = [change for change in others if "delete" not in change.actions]
        self._send(writes)
        if writes or (endpoint.before or {}).get("EndpointStatus") != "InService":
            name, wanted = endpoint.address.split(".", 1)[1], endpoint.after["EndpointConfigName"]
            served = self._wait(name)
            if served["EndpointConfigName"] != wanted:  # a failed update rolls back, InService again
                reason = served.get("FailureReason") or "no reason given"
                now = served["EndpointConfigName"]
                raise PlexusError(f"endpoint {name} still serves {now}, not {wanted}: {reason}")
        self._send_calls(
            request for kind in (TARGET_KIND, POLICY_KIND) for change in scaling if change.kind == kind
            for request in change.calls if request.operation not in REMOVALS
        )  # fmt: skip
        self._send(change for change in others if "delete" in change.actions)

    def status(self, score: Score) -> dict[str, Any] | None:
        """The endpoint's description plus its config's variants and its autoscaling (`Autoscaling`: the target's
        MinCapacity and MaxCapacity and the policy's TargetValue, None without), or None when there is no
        endpoint."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        if endpoint is None:
            return None
        config = self._describe("describe_endpoint_config", "EndpointConfigName", endpoint["EndpointConfigName"])
        variants = (config or {}).get("ProductionVariants", [])
        target, policy = self._scaling(name) if any("InstanceType" in v for v in variants) else (None, None)
        scaling = {**target, "TargetValue": (policy or {}).get("TargetValue")} if target else None
        return {**endpoint, "ProductionVariants": variants, "Autoscaling": scaling}

    def delete(self, score: Score) -> tuple[Change, ...]:
        """Delete the endpoint's autoscaling, the endpoint, its config and its models, and every other config and
        model this tool made for the score (earlier versions left behind); what is already gone counts as
        deleted. Answers the deletes."""
        name = endpoint_name(score)
        endpoint = self._describe("describe_endpoint", "EndpointName", name)
        changes, configs, models = [], [], []
        if endpoint is not None:
            configs.append(endpoint["EndpointConfigName"])
            serving = self._config_models(configs[0]) or {}
            models += serving.get("ModelNames", [])
            if "InstanceType" in serving:  # only a variant with instances has a scalable instance count
                changes += scaling_removals(name, *self._scaling(name), "deleted with its score")
            changes.append(deletion(ENDPOINT_KIND, name, "deleted with its score", {"EndpointConfigName": configs[0]}))
        configs += [c for c in self._names(score, "list_endpoint_configs", "EndpointConfigs", "c") if c not in configs]
        models += [m for m in self._names(score, "list_models", "Models", "m") if m not in models]
        changes += [deletion(CONFIG_KIND, config, "made for the score") for config in configs]
        changes += [deletion(MODEL_KIND, model, "made for the score") for model in models]
        self._send(changes)
        return tuple(changes)

    def _send(self, changes: Iterable[Change]) -> None:
        self._send_calls(request for change in changes for request in change.calls)

    def _send_calls(self, requests: Iterable[Call]) -> None:
        for request in requests:
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
        """An endpoint config as its models' names (and its variant's instance type, when it has instances), or None
        when it does not exist."""
        config = self._describe("describe_endpoint_config", "EndpointConfigName", name)
        if config is None:
            return None
        variants = config.get("ProductionVariants", [])
        models = {"ModelNames": [v["ModelName"] for v in variants]}
        return (
            {**models, "InstanceType": variants[0]["InstanceType"]}
            if variants and "InstanceType" in variants[0]
            else models
        )

    def _describe(self, method: str, argument: str, name: str) -> dict[str, Any] | None:
        return call(getattr(self.clients.sagemaker, method), name, absent=NOT_FOUND, **{argument: name})

    def _wait(self, name: str) -> dict[str, Any]:
        describe = lambda: call(self.clients.sagemaker.describe_endpoint, name, EndpointName=name)  # noqa: E731
        endpoint = wait(ENDPOINT, describe, self.reporter.status, sleep=self.sleep)
        if endpoint["EndpointStatus"] != "InService":
            raise PlexusError(f"endpoint {name} is {endpoint['EndpointStatus']}: {endpoint.get('FailureReason', '')}")
        return endpoint
