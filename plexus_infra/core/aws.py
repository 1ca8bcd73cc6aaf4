"""The one place that makes boto3 clients and turns AWS failures into one-line errors.

Retries are policy, not loops: botocore's standard retry mode handles throttling and 5xx on every call;
`until_consistent` is the engine's own bounded retry for AWS's eventual consistency (a bucket that is not
visible yet, a role that is not assumable yet). Resource modules never sleep or catch ClientError themselves.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from plexus_infra.core.errors import ApplyError, AwsError, ObserveError

T = TypeVar("T")

WRITE_PREFIXES = ("Create", "Put", "Delete", "Update", "Attach", "Detach", "Tag", "Untag", "Add", "Remove")

HINTS = {
    "AccessDenied": "the credentials lack this permission; grant it or use another profile",
    "AccessDeniedException": "the credentials lack this permission; grant it or use another profile",
    "UnauthorizedOperation": "the credentials lack this permission; grant it or use another profile",
    "InvalidClientTokenId": "the credentials are not valid; check AWS_PROFILE or the access keys",
    "ExpiredToken": "the session token expired; log in again",
    "Throttling": "AWS kept throttling after every retry; run again in a minute",
    "ThrottlingException": "AWS kept throttling after every retry; run again in a minute",
    "SlowDown": "S3 kept asking to slow down after every retry; run again in a minute",
    "BucketAlreadyExists": "another AWS account owns this bucket name; choose another bucket.name",
    "DeleteConflict": "something still depends on it; run plan to see what",
    "ConcurrentModification": "another change is in progress; run again",
    "OperationAborted": "another change to this bucket is in progress; run again",
}

# botocore's own failures (no HTTP answer at all), by exception class name.
CONNECTION_HINTS = {
    "NoCredentialsError": "set AWS_PROFILE or access keys, or use `plexus-infra sandbox` for a local AWS",
    "PartialCredentialsError": "the credentials are incomplete; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "ProfileNotFound": "no such profile in the AWS config; check --profile / AWS_PROFILE",
    "EndpointConnectionError": "nothing answers there; if AWS_ENDPOINT_URL names a sandbox, is it running?",
    "ConnectTimeoutError": "the endpoint did not answer in time; check the network or AWS_ENDPOINT_URL",
}

# Codes AWS returns while a just-written resource propagates; retried by `until_consistent`.
EVENTUALLY_CONSISTENT = ("NoSuchBucket", "NoSuchEntity", "OperationAborted")
# Another change to the same resource is in progress: worth sending again after a pause. botocore's standard
# retry mode retries neither (they are not throttling codes; botocore/retries/standard.py).
IN_PROGRESS = ("ConcurrentModification", "TooManyUpdates", "OperationAborted")


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code") or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    return None


def describe_failure(action: str, resource: str, exc: BaseException, hints: dict[str, str] | None = None) -> str:
    """One line for a person: the action, the resource, what AWS said and what to do (`hints` by error code,
    for what only the caller can say, before the general HINTS)."""
    code = error_code(exc)
    if code is None:
        return f"{action} {resource}: {exc}"
    message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
    hint = (hints or {}).get(code) or HINTS.get(code)
    text = f"{action} {resource}: {code}"
    if message:
        text += f": {message.rstrip('.')}"
    return f"{text} ({hint})" if hint else text


def call(
    method: Callable[..., T],
    resource: str,
    *,
    absent: Iterable[str] = (),
    error: type[AwsError] = ObserveError,
    hints: dict[str, str] | None = None,
    **kwargs: Any,
) -> T | None:
    """Call one boto3 method; None when AWS says the thing is absent (codes in `absent`), else a one-line
    `error` naming the action and the resource (and what to do: `hints` by code). Missing is a value, not a
    crash."""
    from botocore.exceptions import BotoCoreError, ClientError

    action = _action_name(method)
    try:
        return method(**kwargs)
    except ClientError as exc:
        if error_code(exc) in set(absent):
            return None
        raise error(describe_failure(action, resource, exc, hints)) from exc
    except BotoCoreError as exc:
        hint = CONNECTION_HINTS.get(type(exc).__name__)
        raise error(f"{action} {resource}: {exc}" + (f" ({hint})" if hint else "")) from exc


def _action_name(method: Callable[..., Any]) -> str:
    client = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "call")
    if client is not None:
        service = client.meta.service_model.service_name
        operation = client.meta.method_to_api_mapping.get(name, name)
        return f"{service}:{operation}"
    return name


def role_not_assumable_yet(exc: BaseException) -> bool:
    """SageMaker's answer (CreateTrainingJob, CreateModel) while a just-created or just-changed role has not
    reached it: IAM is eventually consistent, and Terraform retries this for two minutes too."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return error_code(exc) == "ValidationException" and ("assume" in message or "role" in message)


def until_consistent(
    fn: Callable[[], T],
    *,
    codes: Iterable[str] = EVENTUALLY_CONSISTENT,
    also: Callable[[BaseException], bool] | None = None,
    timeout: float = 120.0,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn`, retrying while AWS answers with an eventual-consistency code (or an answer `also` recognises),
    with jittered exponential backoff, for at most `timeout` seconds; other errors fail at once."""
    codes = set(codes)
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        try:
            return fn()
        except AwsError as exc:
            cause = exc.__cause__
            transient = cause is not None and (error_code(cause) in codes or (also is not None and also(cause)))
            if not transient or time.monotonic() + delay > deadline:
                raise
        sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, max_delay)


def waiter_config(timeout: float, delay: float = 1.0) -> dict[str, int]:
    """A timeout in seconds as botocore's WaiterConfig (Delay, MaxAttempts)."""
    return {"Delay": max(1, round(delay)), "MaxAttempts": max(1, math.ceil(timeout / max(delay, 1.0)))}


def wait_for(client: Any, waiter: str, resource: str, *, timeout: float = 60.0, **params: Any) -> None:
    """Wait with one of botocore's own waiters; a timeout or a failure is one ApplyError line."""
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter(waiter).wait(WaiterConfig=waiter_config(timeout), **params)
    except WaiterError as exc:
        raise ApplyError(f"waiting for {resource} ({waiter}): {exc.kwargs.get('reason') or exc}") from exc


@functools.cache
def _shared_loader() -> Any:
    """One botocore data loader per process: service models are parsed once (~0.3 s), not once per `Clients`."""
    import botocore.loaders

    return botocore.loaders.create_loader()


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    partition: str


@dataclass(frozen=True)
class Credentials:
    """Whose calls: a profile's credentials (else the default chain) and, optionally, a role assumed with them.

    + role_arn / external_id / session_name: the role to assume (sts:AssumeRole), refreshed before it expires
    """

    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    session_name: str | None = None

    def describe(self) -> str:
        """`role arn:... (assumed with profile deploy)`, `profile deploy` or `the default credentials`."""
        base = f"profile {self.profile}" if self.profile else "the default credentials"
        return f"role {self.role_arn} (assumed with {base})" if self.role_arn else base


class Clients:
    """boto3 clients for one region and set of credentials, created once and shared by threads, counting every call.

    + region: the environment's region
    + profile: an AWS profile name, else the default credential chain (a shorthand for credentials=)
    + credentials: whose calls, a role to assume included
    Honours AWS_ENDPOINT_URL (the local sandbox) through botocore's own configuration.
    """

    def __init__(
        self,
        region: str,
        profile: str | None = None,
        *,
        credentials: Credentials | None = None,
        same_identity_as: Clients | None = None,
    ):
        self.region = region
        self.credentials = credentials or Credentials(profile)
        self.profile = self.credentials.profile
        self.calls: Counter[str] = Counter()
        self._clients: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._identity: Identity | None = None
        self._same_identity_as = same_identity_as  # the same credentials in another region: one identity call
        # Reads made once for several environments sharing these clients (filled by plexus_infra.fleet).
        self.shared: dict[str, Any] = {}

    @cached_property
    def _session(self) -> Any:
        import boto3
        import botocore.session

        core = botocore.session.get_session()
        core.register_component("data_loader", _shared_loader())
        session = boto3.session.Session(botocore_session=core, profile_name=self.profile, region_name=self.region)
        if self.credentials.role_arn:
            core._credentials = self._assumed(session)  # botocore has no public setter for refreshable credentials
        return session

    def _assumed(self, session: Any) -> Any:
        """Credentials of the assumed role, fetched on first use and refreshed before they expire, as botocore does
        for a profile's role_arn (AssumeRoleCredentialFetcher)."""
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        credentials = self.credentials
        extra = {"RoleSessionName": credentials.session_name or "plexus-infra"}
        if credentials.external_id:
            extra["ExternalId"] = credentials.external_id
        source = session._session.get_credentials()
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=session._session.create_client,
            source_credentials=source,
            role_arn=credentials.role_arn,
            extra_args=extra,
        )
        return DeferredRefreshableCredentials(method="assume-role", refresh_using=fetcher.fetch_credentials)

    def client(self, service: str) -> Any:
        """The one client for `service`, created on first use (botocore clients are thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._new_client(service)
            return self._clients[service]

    def _new_client(self, service: str) -> Any:
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        config = Config(
            retries={"mode": "standard", "max_attempts": 8},
            max_pool_connections=32,
            connect_timeout=5,
            read_timeout=120,
        )
        try:
            client = self._session.client(service, config=config)
        except BotoCoreError as exc:  # e.g. ProfileNotFound: no call was made yet
            hint = CONNECTION_HINTS.get(type(exc).__name__)
            raise ObserveError(f"{service} client: {exc}" + (f" ({hint})" if hint else "")) from exc
        client.meta.events.register("before-call", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":", 1)[1].startswith(WRITE_PREFIXES))

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def sts(self) -> Any:
        return self.client("sts")

    @property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        """sagemaker-runtime: invoking endpoints."""
        return self.client("sagemaker-runtime")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def autoscaling(self) -> Any:
        """application-autoscaling: scaling SageMaker endpoint variants."""
        return self.client("application-autoscaling")

    @property
    def kms(self) -> Any:
        return self.client("kms")

    def warm(self, services: tuple[str, ...] = ("sts", "s3", "iam", "ssm")) -> None:
        """Create clients up front, before threads share them."""
        for service in services:
            self.client(service)

    def identity(self) -> Identity:
        """Who these credentials are (sts:GetCallerIdentity, asked once). A role that cannot be assumed is one line
        naming it: the AssumeRole fails as the first call is signed."""
        if self._same_identity_as is not None:
            return self._same_identity_as.identity()
        with self._lock:  # environments sharing these clients ask once
            if self._identity is None:
                self._identity = self._ask_identity()
            return self._identity

    def _ask_identity(self) -> Identity:
        try:
            answer = call(self.sts.get_caller_identity, "caller identity") or {}
        except ObserveError as exc:
            cause = exc.__cause__
            if cause is None or getattr(cause, "operation_name", "") != "AssumeRole":
                raise
            hint = "check the role's trust policy, the external_id and the credentials that assume it"
            role = f"role {self.credentials.role_arn}"
            raise ObserveError(describe_failure("sts:AssumeRole", role, cause, {"AccessDenied": hint})) from cause
        return Identity(answer["Account"], answer["Arn"], answer["Arn"].split(":")[1])


def upload_file(s3: Any, path: Path, bucket: str, key: str, metadata: dict[str, str] | None = None) -> None:
    """Upload a local file with boto3's managed transfer (multipart above its threshold, so past PutObject's
    5 GB limit, never holding the file in memory); a failure is one ApplyError naming the object.

    + metadata: S3 user metadata to store with the object (`x-amz-meta-*`; head_object returns it)

    boto3 wraps the ClientError in S3UploadFailedError; the ClientError stays the cause, so error codes still
    read as they do for `call`."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{key}"
    try:
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": metadata} if metadata else None)
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            raise ApplyError(describe_failure("s3:PutObject", uri, cause)) from cause
        raise ApplyError(f"s3:PutObject {uri}: {exc}") from exc
    except ClientError as exc:
        raise ApplyError(describe_failure("s3:PutObject", uri, exc)) from exc
    except BotoCoreError as exc:
        raise ApplyError(f"s3:PutObject {uri}: {exc}") from exc


def copy_object(s3: Any, source: tuple[str, str], bucket: str, key: str) -> None:
    """Copy an object with boto3's managed transfer: one CopyObject takes at most 5 GB (S3 answers
    InvalidRequest above it: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html), so above
    the transfer's multipart threshold it copies in parts (UploadPartCopy). A failure is one ApplyError."""
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{key}"
    try:
        s3.copy({"Bucket": source[0], "Key": source[1]}, bucket, key)
    except ClientError as exc:
        raise ApplyError(describe_failure("s3:CopyObject", uri, exc)) from exc
    except BotoCoreError as exc:
        raise ApplyError(f"s3:CopyObject {uri}: {exc}") from exc


# --- planned calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One AWS request a change plans: what apply sends, exactly (pyinfra's commands, as data).

    + service / operation: boto3's service name and the API operation, e.g. `s3`, `PutBucketTagging`
    + params: the request's arguments, JSON-able (nothing this tool sends is a secret)
    + resource: what it acts on, for messages (`bucket plexus-staging-training`)
    + absent: error codes that mean the goal is already reached (deleting what is gone): success
    + conflict: error codes that mean someone else made it meanwhile: apply plans that resource again
    + consistent: retried while AWS has not caught up with an earlier write (a new bucket or role)
    + wait: a botocore waiter run after the request, with `params`' names it needs (`bucket_exists`)
    + each: set when the request repeats over what exists at apply time (`object version`): the resource
      lists those then and sends one request per batch (`Resource.expand`)
    + fallback: sent instead when AWS answers with one of `fallback_on` (a bucket born tagged where S3 takes
      no tags at creation)
    + assumes_role: SageMaker checks a role it is handed (CreateModel): retried while a new role propagates
    """

    service: str
    operation: str
    params: dict[str, Any]
    resource: str
    absent: tuple[str, ...] = ()
    conflict: tuple[str, ...] = ()
    consistent: bool = False
    wait: str | None = None
    each: str | None = None
    fallback: Call | None = None
    fallback_on: tuple[str, ...] = ()
    assumes_role: bool = False

    @property
    def label(self) -> str:
        """`s3:PutBucketTagging`, as IAM and CloudTrail name the action."""
        return f"{self.service}:{self.operation}"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"action": self.label, "params": self.params}
        if self.each:
            document["for_each"] = self.each
        if self.fallback:
            document["otherwise"] = self.fallback.to_json()
        return document


CONFLICT = object()  # what `send` answers when AWS says the target was made meanwhile (Call.conflict)


def send(clients: Clients, request: Call, *, sleep: Callable[[float], None] = time.sleep) -> Any:
    """One planned call, as AWS takes it: retried while AWS catches up when it says so, followed by its waiter.
    Answers AWS's response, or CONFLICT for one of the call's `conflict` codes; an error is one ApplyError line."""
    client = clients.client(request.service)
    method = getattr(client, xform_name(request.operation))

    def attempt() -> Any:
        return call(
            method, request.resource, absent=(*request.absent, *request.conflict), error=ApplyError, **request.params
        )

    also = role_not_assumable_yet if request.assumes_role else None
    try:
        answer = until_consistent(attempt, codes=retried(request), also=also, sleep=sleep)
    except ApplyError as exc:
        if request.fallback is None or error_code(exc.__cause__) not in request.fallback_on:
            raise
        return send(clients, request.fallback, sleep=sleep)
    if answer is None and request.conflict:
        return CONFLICT
    if request.wait:
        wait_for(client, request.wait, request.resource, **_waiter_params(client, request))
    return answer


def retried(request: Call) -> tuple[str, ...]:
    """The codes a call is sent again on, with backoff: another change to the same thing in progress (botocore's
    standard retry mode leaves IAM's ConcurrentModification and SSM's TooManyUpdates alone), and, for calls
    that follow a write, AWS not having caught up with it yet."""
    return (*IN_PROGRESS, *(EVENTUALLY_CONSISTENT if request.consistent else ()))


def _waiter_params(client: Any, request: Call) -> dict[str, Any]:
    """The call's own arguments that its waiter's operation takes (bucket_exists: Bucket)."""
    operation = client.get_waiter(request.wait).config.operation
    members = client.meta.service_model.operation_model(operation).input_shape.members
    return {key: value for key, value in request.params.items() if key in members}


def xform_name(operation: str) -> str:
    """`PutBucketTagging` → `put_bucket_tagging`: boto3's method for an API operation."""
    from botocore import xform_name as botocore_xform_name

    return botocore_xform_name(operation)
