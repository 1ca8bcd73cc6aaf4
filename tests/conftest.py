"""Shared fixtures: one local moto server per test session, reset between tests.

No test can reach real AWS: at import time this file removes every variable that could name real
credentials and points boto3 at a closed local port; the `aws` fixture then points it at the sandbox.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.retries.standard import ExponentialBackoff

from plexus_infra.sandbox import REAL_AWS_VARIABLES, Sandbox, running_sandbox
from tests.helpers import ROOT

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
