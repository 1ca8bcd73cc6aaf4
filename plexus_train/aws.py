"""boto3 clients for the training module: the same `plexus_infra.aws.Clients` (standard retry mode, call
counting, AWS_ENDPOINT_URL honoured), with the services training and deployment use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plexus_infra.aws import Clients as InfraClients
from plexus_infra.aws import describe_failure
from plexus_infra.errors import ApplyError


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


def upload_file(s3: Any, path: Path, bucket: str, key: str, metadata: dict[str, str] | None = None) -> None:
    """Upload a local file with boto3's managed transfer (multipart above its threshold, so past PutObject's
    5 GB limit, never holding the file in memory); a failure is one ApplyError naming the object.

    + metadata: S3 user metadata to store with the object (`x-amz-meta-*`; head_object returns it)

    boto3 wraps the ClientError in S3UploadFailedError; the ClientError stays the cause, so error codes still
    read as they do for `plexus_infra.aws.call`."""
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
