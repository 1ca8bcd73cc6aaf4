"""A local AWS (moto in server mode) on 127.0.0.1: the embedded default for the demo and the tests."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from plexus_infra.core.errors import PlexusError

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that could point boto3 at a real account; the sandbox environment removes them.
REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True)
class Sandbox:
    """A running local AWS endpoint."""

    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (and this tool) at the sandbox with dummy credentials."""
        return {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def exports(self) -> str:
        """Shell lines a user pastes to use the sandbox."""
        lines = [f"unset {' '.join(REAL_AWS_VARIABLES)}"]
        lines += [f"export {key}={value}" for key, value in self.environment().items()]
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise PlexusError(f"the sandbox did not answer on {host}:{port} within {timeout:.0f} s")


@contextmanager
def running_sandbox(port: int = 0, host: str = "127.0.0.1", *, aws_managed_policies: bool = False) -> Iterator[Sandbox]:
    """Run a moto server in this process (threaded) until the block ends. Port 0 picks a free one.

    + aws_managed_policies: load AWS's managed IAM policies (arn:aws:iam::aws:policy/...), as a real account
      has them; off for the tests, where loading them at every reset would cost seconds
    """
    if aws_managed_policies:
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise PlexusError(
            "the sandbox needs moto's server: pip install 'plexus-infra[sandbox]' (or the test extra)"
        ) from None
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise here
    port = port or free_port(host)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise PlexusError(f"cannot start the sandbox: {host}:{port} is already in use (choose --port)")
    try:
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
    except OSError as exc:
        raise PlexusError(f"cannot start the sandbox on {host}:{port}: {exc.strerror or exc}") from None
    try:
        wait_for_port(host, port)
        yield Sandbox(host, port)
    finally:
        server.stop()
