"""boto3 clients for the training module: one region, botocore's standard retry mode, AWS_ENDPOINT_URL
honoured (the sandbox). Error wording and the eventual-consistency retry come from plexus_infra.aws."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any


class Clients:
    """Lazily created clients for the services training and deployment use."""

    def __init__(self, region: str):
        self.region = region
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=120)
        with self._lock:
            return boto3.session.Session(region_name=self.region).client(service, config=config)

    @cached_property
    def s3(self) -> Any:
        return self._client("s3")

    @cached_property
    def ssm(self) -> Any:
        return self._client("ssm")

    @cached_property
    def sagemaker(self) -> Any:
        return self._client("sagemaker")

    @cached_property
    def runtime(self) -> Any:
        return self._client("sagemaker-runtime")

    @cached_property
    def logs(self) -> Any:
        return self._client("logs")
