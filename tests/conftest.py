"""Shared fixtures: one local moto server per test session, reset between tests.

No test can reach real AWS: at import time this file removes every variable that could name real
credentials and points boto3 at a closed local port; the `aws` fixture then points it at the sandbox.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

import plexus_infra.core.aws
import plexus_infra.engine
from plexus_infra.sandbox import REAL_AWS_VARIABLES, Sandbox, running_sandbox
from tests.helpers import ROOT, AwsClients, Recorder, Request
from tests.real_aws import RealAwsProxy, running_proxy

for _name in REAL_AWS_VARIABLES:
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # Until a test asks for the sandbox, any AWS call goes to a closed port and fails fast.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A clean local AWS for one test; AWS_ENDPOINT_URL points at it (also for subprocesses)."""
    sandbox_server.reset()
    for key, value in sandbox_server.environment().items():
        monkeypatch.setenv(key, value)
    yield sandbox_server


@pytest.fixture(scope="session")
def real_aws_server(sandbox_server: Sandbox) -> Iterator[RealAwsProxy]:
    with running_proxy(sandbox_server.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def real_aws(sandbox: Sandbox, real_aws_server: RealAwsProxy, monkeypatch: pytest.MonkeyPatch) -> RealAwsProxy:
    """The sandbox behind tests/real_aws.py's proxy, which answers as real AWS does where moto is kinder (system
    tags, other accounts' buckets, ACLs with enforced ownership, the copy limit); AWS_ENDPOINT_URL points at it."""
    real_aws_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", real_aws_server.endpoint_url)
    return real_aws_server


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's manifests as the working directory, free to edit."""
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retry backoff, with its 1 s throttling base scaled to 50 ms so fault suites stay fast."""
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.05)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Swap in a Clients subclass that records each request's operation and target."""
    recorder = Recorder()
    base = plexus_infra.core.aws.Clients

    class RecordingClients(base):  # type: ignore[misc, valid-type]
        def _new_client(self, service: str) -> Any:
            client = super()._new_client(service)
            client.meta.events.register("provide-client-params", self._record)
            return client

        def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
            target = params.get("Bucket") or params.get("RoleName") or params.get("Name") or params.get("Names") or ""
            operation = f"{model.service_model.service_name}:{model.name}"
            recorder.requests.append(Request(operation, ",".join(target) if isinstance(target, list) else target))

    monkeypatch.setattr(plexus_infra.core.aws, "Clients", RecordingClients)
    monkeypatch.setattr(plexus_infra.engine, "Clients", RecordingClients, raising=False)
    return recorder


@pytest.fixture
def aws(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A clean sandbox, the repository as working directory (so --env NAME resolves) and boto3 clients for
    the test's own out-of-band changes (not counted by the recorder)."""
    monkeypatch.chdir(ROOT)
    yield AwsClients(boto3.client("s3"), boto3.client("iam"), boto3.client("ssm"))
