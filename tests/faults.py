"""Fault injection for tests: botocore event hooks that answer chosen requests with real AWS error responses.

The fake answer is an HTTP response in the service's own wire format, returned from `before-send`, so botocore
parses it, its standard retry handler decides on it, and the engine sees exactly what AWS would send. Nothing
here is imported by product code.

    injector = Injector([RandomFaults(rate=0.25, seed=6)])
    with installed(injector):
        main(["apply", "--auto-approve", "environments/development.yaml"])
    print(injector.report())

Run as `python -m tests.faults ARGS...` it is the CLI with the faults described by $PLEXUS_TEST_FAULTS (JSON:
`seed`, `rate`, `deny`, `kill_at_write`) installed, for subprocess tests.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from plexus_infra.core.aws import WRITE_PREFIXES, Clients

# (error code, HTTP status) as AWS sends them.
Fault = tuple[str, int]

# Retryable faults AWS really sends, per service: throttling (4xx/503) and server errors (5xx).
TRANSIENT: dict[str, tuple[Fault, ...]] = {
    "s3": (("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503)),
    "iam": (("Throttling", 400), ("ServiceFailure", 500), ("ServiceUnavailable", 503)),
    "sts": (("Throttling", 400), ("InternalError", 500)),
    "ssm": (("ThrottlingException", 400), ("InternalServerError", 500), ("ServiceUnavailable", 503)),
    "sagemaker": (("ThrottlingException", 400), ("InternalFailure", 500), ("ServiceUnavailable", 503)),
    "cloudwatch-logs": (("ThrottlingException", 400), ("ServiceUnavailableException", 500)),
}
# Services speaking JSON 1.1 (botocore's event names).
JSON_SERVICES = frozenset({"ssm", "sagemaker", "cloudwatch-logs"})

QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing in the product catches it."""


class _Body:
    def __init__(self, content: bytes):
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def error_body(service: str, code: str, message: str) -> tuple[bytes, dict[str, str]]:
    """An error document in the service's wire protocol (rest-xml, query or json)."""
    if service in JSON_SERVICES:
        return json.dumps({"__type": code, "message": message}).encode(), {"Content-Type": "application/x-amz-json-1.1"}
    error = f"<Code>{code}</Code><Message>{message}</Message>"
    if service == "s3":
        return f"<Error>{error}<RequestId>fault</RequestId></Error>".encode(), {"Content-Type": "application/xml"}
    namespace = QUERY_NAMESPACES[service]
    document = f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>{error}</Error>'
    return f"{document}<RequestId>fault</RequestId></ErrorResponse>".encode(), {"Content-Type": "text/xml"}


def fake_response(request: Any, service: str, fault: Fault, message: str | None = None) -> AWSResponse:
    """The HTTP answer AWS gives for `fault` (HEAD answers carry no body, as in S3)."""
    code, status = fault
    body, headers = error_body(service, code, message or f"injected {code}")
    if request.method == "HEAD":
        body = b""
    return AWSResponse(request.url, status, {**headers, "x-amz-request-id": "fault"}, _Body(body))


def is_write(operation: str) -> bool:
    """`service:Operation` changes something (the same rule as `Clients.writes`)."""
    return operation.split(":", 1)[1].startswith(WRITE_PREFIXES)


class Rule:
    """Decides, request by request, whether to answer with a fault instead of letting it through."""

    label = "fault"

    def fault(self, operation: str, request: Any) -> Fault | None:
        return None

    def passing(self, operation: str, request: Any) -> None:
        """Called when a request goes through to the server unharmed."""

    def replay(self, operation: str, request: Any) -> AWSResponse | None:
        """A whole recorded answer to return instead of the server's (stale reads)."""
        return None


@dataclass
class LostAnswer(Rule):
    """The request reaches the server, which acts on it, but its answer is lost on the way back: the client sees
    a 500 and botocore sends the request again (what a dropped connection does to a create)."""

    operation: str
    times: int = 1
    label = "lost answer"

    def replay(self, operation: str, request: Any) -> AWSResponse | None:
        if operation != self.operation or self.times == 0:
            return None
        self.times -= 1
        body = request.body.encode() if isinstance(request.body, str) else request.body
        sent = urllib.request.Request(request.url, data=body, headers=dict(request.headers), method=request.method)
        with urllib.request.urlopen(sent, timeout=30):
            pass  # the server acted on it; its answer never arrives
        return fake_response(request, operation.split(":", 1)[0], ("InternalFailure", 500))


@dataclass
class RandomFaults(Rule):
    """Throttling and 5xx on `rate` of all requests (retries included), decided by a seeded hash of
    (seed, operation, how many times it was sent) so thread scheduling does not change what is injected."""

    rate: float = 0.25
    seed: int = 0
    label = "transient"
    _sent: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, operation: str, request: Any) -> Fault | None:
        with self._lock:
            self._sent[operation] += 1
            draw = random.Random(f"{self.seed}:{operation}:{self._sent[operation]}")
        if draw.random() >= self.rate:
            return None
        return draw.choice(TRANSIENT[operation.split(":", 1)[0]])


@dataclass
class Answer(Rule):
    """Answer `operations` with `fault`, `times` times (None: always), once `after` has gone through (None:
    from the start). E.g. NoSuchBucket on the first writes after CreateBucket; AccessDenied on one action."""

    operations: Iterable[str] | Callable[[str], bool]
    fault_: Fault
    times: int | None = None
    after: str | None = None
    message: str | None = None  # AWS's words for the fault, when the code alone does not say it
    label = "answer"

    def __post_init__(self) -> None:
        self.armed = self.after is None
        self._lock = threading.Lock()
        self.label = self.fault_[0]

    def _matches(self, operation: str) -> bool:
        return self.operations(operation) if callable(self.operations) else operation in set(self.operations)

    def fault(self, operation: str, request: Any) -> Fault | None:
        with self._lock:
            if not self.armed or not self._matches(operation) or self.times == 0:
                return None
            if self.times is not None:
                self.times -= 1
            return self.fault_

    def passing(self, operation: str, request: Any) -> None:
        if operation == self.after:
            self.armed = True


@dataclass
class StaleRead(Rule):
    """After `write` goes through, the next `times` reads of the same URL answer as before the write (S3
    sub-resources are read and written at one URL, e.g. `?lifecycle`)."""

    write: str
    times: int = 1
    label = "stale read"

    def __post_init__(self) -> None:
        self.recorded: tuple[int, dict[str, str], bytes] | None = None
        self.url = ""

    def passing(self, operation: str, request: Any) -> None:
        if operation != self.write:
            return
        self.url = request.url
        try:
            with urllib.request.urlopen(request.url, timeout=10) as answer:
                self.recorded = (answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            self.recorded = (error.code, dict(error.headers), error.read())

    def replay(self, operation: str, request: Any) -> AWSResponse | None:
        if self.recorded is None or self.times == 0 or request.method != "GET" or request.url != self.url:
            return None
        self.times -= 1
        status, headers, body = self.recorded
        return AWSResponse(request.url, status, headers, _Body(body))


class Injector:
    """Attach to boto3 clients; answers requests per its rules and keeps the figures.

    + rules: consulted in order; the first fault wins
    + crash_at_write: raise `Crash` (or SIGKILL the process when `kill` is set) as the N-th write call starts
    + on_success: `service:Operation` → callback run after that call succeeds (e.g. upload objects)
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        crash_at_write: int | None = None,
        kill: bool = False,
        on_success: dict[str, Callable[[], None]] | None = None,
    ):
        self.rules = list(rules)
        self.crash_at_write = crash_at_write
        self.kill = kill
        self.on_success = on_success or {}
        self.injected: Counter[str] = Counter()
        self.retried_by_botocore = 0  # faults inside calls whose last answer came from the server
        self.surfaced = 0  # faults whose call ended with an injected answer: the engine had to cope
        self.writes: list[str] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-call", self._before_call)
        events.register("before-send", self._before_send)
        events.register("after-call", self._after_call)

    @staticmethod
    def _operation(model: Any) -> str:
        return f"{model.service_model.service_name}:{model.name}"

    def _before_call(self, model: Any, **_: Any) -> None:
        self._local.faults = 0
        self._local.injected_last = False
        operation = self._operation(model)
        if not is_write(operation):
            return
        with self._lock:
            self.writes.append(operation)
            index = len(self.writes)
        if index == self.crash_at_write:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise Crash(f"crash before write {index} ({operation})")

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, name = event_name.split(".", 2)
        operation = f"{service}:{name}"
        for rule in self.rules:
            fault = rule.fault(operation, request)
            if fault is not None:
                self._record(fault[0])
                return fake_response(request, service, fault, getattr(rule, "message", None))
            replayed = rule.replay(operation, request)
            if replayed is not None:
                self._record(rule.label)
                return replayed
        self._local.injected_last = False
        for rule in self.rules:
            rule.passing(operation, request)
        return None

    def _record(self, label: str) -> None:
        with self._lock:
            self.injected[label] += 1
        self._local.faults = getattr(self._local, "faults", 0) + 1
        self._local.injected_last = True

    def _after_call(self, http_response: Any, model: Any, **_: Any) -> None:
        faults = getattr(self._local, "faults", 0)
        ok = http_response.status_code < 300
        with self._lock:
            if getattr(self._local, "injected_last", False):
                self.surfaced += faults
            else:
                self.retried_by_botocore += faults
        callback = self.on_success.get(self._operation(model))
        if ok and callback:
            callback()

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def report(self) -> str:
        """One line of figures for the test log."""
        kinds = ", ".join(f"{label} {n}" for label, n in sorted(self.injected.items()))
        return (
            f"faults injected {self.total} ({kinds or 'none'}): {self.retried_by_botocore} absorbed by botocore "
            f"retries, {self.surfaced} surfaced to the engine; {len(self.writes)} write calls"
        )


@contextmanager
def installed(injector: Injector) -> Iterator[Injector]:
    """Every `Clients` made inside the block gets the injector's hooks on each of its boto3 clients."""
    original = Clients._new_client

    def hooked(self: Clients, service: str) -> Any:
        client = original(self, service)
        injector.attach(client)
        return client

    Clients._new_client = hooked  # type: ignore[method-assign]
    try:
        yield injector
    finally:
        Clients._new_client = original  # type: ignore[method-assign]


def from_environment(spec: dict[str, Any]) -> Injector:
    """An injector from the JSON in $PLEXUS_TEST_FAULTS (subprocess tests)."""
    rules: list[Rule] = []
    if spec.get("rate"):
        rules.append(RandomFaults(rate=spec["rate"], seed=spec.get("seed", 0)))
    if spec.get("deny"):
        rules.append(Answer(spec["deny"], ("AccessDenied", 403)))
    return Injector(rules, crash_at_write=spec.get("kill_at_write"), kill=True)


def main() -> int:
    from plexus_infra.cli import main as cli_main

    injector = from_environment(json.loads(os.environ.get("PLEXUS_TEST_FAULTS") or "{}"))
    with installed(injector):
        return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
