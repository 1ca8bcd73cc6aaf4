"""Emptying a versioned bucket: every version and delete marker, across pages, in batches of at most 1000."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from plexus_infra.core.errors import ApplyError
from plexus_infra.engine import run_change
from plexus_infra.plan import DELETE, Change
from plexus_infra.resources.bucket import S3Bucket
from tests.helpers import resource_for


class FakeS3:
    """A bucket's versions and delete markers: list_object_versions answers from what is left (at most MaxKeys,
    as S3 does), delete_objects removes what it is sent and records each batch."""

    # what plexus_infra.core.aws.call reads to name the action in its messages
    meta = SimpleNamespace(service_model=SimpleNamespace(service_name="s3"), method_to_api_mapping={})

    def __init__(self, entries: dict[str, list[dict[str, str]]], errors: list[dict[str, str]] | None = None):
        self.left = {kind: list(items) for kind, items in entries.items()}
        self.errors = errors or []
        self.batches: list[list[dict[str, str]]] = []
        self.deleted_bucket = False

    def list_object_versions(self, Bucket: str, MaxKeys: int) -> dict[str, Any]:
        versions = self.left.get("Versions", [])[:MaxKeys]
        markers = self.left.get("DeleteMarkers", [])[: MaxKeys - len(versions)]
        return {"Versions": versions, "DeleteMarkers": markers}

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        self.batches.append(Delete["Objects"])
        if self.errors:
            return {"Errors": self.errors}
        gone = {(o["Key"], o["VersionId"]) for o in Delete["Objects"]}
        self.left = {k: [e for e in v if (e["Key"], e["VersionId"]) not in gone] for k, v in self.left.items()}
        return {}

    def delete_bucket(self, Bucket: str) -> dict[str, Any]:
        self.deleted_bucket = True
        return {}


class FakeClients:
    def __init__(self, s3: FakeS3):
        self.s3 = s3

    def client(self, service: str) -> FakeS3:
        assert service == "s3"
        return self.s3


def versions(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "VersionId": f"v{i}"} for i in range(count)]


def bucket() -> S3Bucket:
    resource = resource_for({}, "s3_bucket")
    assert isinstance(resource, S3Bucket)
    return resource


def destroy(s3: FakeS3, progress: Any = None) -> None:
    """Send the bucket's planned removal, as `destroy` does."""
    resource = bucket()
    change = Change(resource.address, DELETE, {}, None, calls=tuple(resource.removal({})))
    run_change(FakeClients(s3), resource, change, progress=progress)  # type: ignore[arg-type]


def test_versions_and_markers_across_pages_go_in_batches_of_at_most_1000() -> None:
    s3 = FakeS3(
        {"Versions": versions("a", 700) + versions("b", 700), "DeleteMarkers": versions("m", 200) + versions("n", 5)}
    )
    progress: list[int] = []
    destroy(s3, lambda _d, done, _t: progress.append(done))
    assert [len(b) for b in s3.batches] == [1000, 605]
    sent = {(o["Key"], o["VersionId"]) for batch in s3.batches for o in batch}
    assert len(sent) == 1605
    assert progress == [1000, 1605]
    assert s3.deleted_bucket


def test_an_empty_bucket_is_deleted_without_a_batch() -> None:
    s3 = FakeS3({})
    destroy(s3)
    assert s3.batches == []
    assert s3.deleted_bucket


def test_objects_s3_refused_to_delete_stop_before_the_bucket_is_deleted() -> None:
    s3 = FakeS3({"Versions": versions("a", 3)}, errors=[{"Key": "a1", "Code": "AccessDenied"}])
    with pytest.raises(
        ApplyError,
        match="s3:DeleteObjects bucket plexus-production-training: 1 objects not deleted, first a1: AccessDenied",
    ):
        destroy(s3)
    assert not s3.deleted_bucket


def test_a_listing_that_keeps_returning_deleted_versions_stops_with_an_error() -> None:
    s3 = FakeS3({"Versions": versions("a", 3)})
    s3.delete_objects = lambda Bucket, Delete: {}  # type: ignore[method-assign]  # says done, deletes nothing
    with pytest.raises(ApplyError, match="deleted versions are still listed"):
        destroy(s3)
    assert not s3.deleted_bucket
