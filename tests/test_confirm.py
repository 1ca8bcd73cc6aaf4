"""On a terminal, apply and destroy ask first, and only `yes` goes ahead (stdin is a real pseudo-terminal)."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3

from plexus_infra.sandbox import Sandbox
from tests.helpers import ROOT

BUCKET = "plexus-development-training"


def run_on_terminal(answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a pseudo-terminal as stdin, typing `answer` at the prompt."""
    primary, secondary = os.openpty()
    try:
        os.write(primary, f"{answer}\n".encode())
        return subprocess.run(
            [sys.executable, "-m", "plexus_infra", *args],
            stdin=secondary,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        os.close(primary)
        os.close(secondary)


def bucket_exists() -> bool:
    return BUCKET in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]


def test_apply_on_a_terminal_goes_ahead_only_after_yes(sandbox: Sandbox) -> None:
    refused = run_on_terminal("y", "apply", "--env", "development")
    assert refused.returncode == 1
    assert "Only 'yes' will be accepted" in refused.stdout
    assert "cancelled; nothing was changed" in refused.stderr
    assert not bucket_exists()

    accepted = run_on_terminal("yes", "apply", "--env", "development")
    assert accepted.returncode == 0, accepted.stderr
    assert "Apply complete!" in accepted.stdout
    assert bucket_exists()


def test_destroy_on_a_terminal_asks_too(sandbox: Sandbox) -> None:
    assert run_on_terminal("yes", "apply", "--env", "development").returncode == 0
    refused = run_on_terminal("no", "destroy", "--env", "development")
    assert refused.returncode == 1
    assert "Do you want to destroy development?" in refused.stdout
    assert bucket_exists()
