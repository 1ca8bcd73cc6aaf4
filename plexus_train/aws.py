"""boto3 clients for the training module: the same `plexus_infra.aws.Clients` (standard retry mode, call
counting, AWS_ENDPOINT_URL honoured), with the services training and deployment use."""

from __future__ import annotations

from typing import Any

from plexus_infra.aws import Clients as InfraClients


class Clients(InfraClients):
    """Adds SageMaker, its runtime and CloudWatch Logs to the infrastructure clients."""

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")

    @property
    def logs(self) -> Any:
        return self.client("logs")
