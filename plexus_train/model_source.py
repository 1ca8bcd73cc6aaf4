"""Which model.tar.gz an endpoint serves, and getting local artifacts into the bucket first.

`find_model` only reads (head the object, hash the local artifacts) and says what it would serve; when that is
local artifacts the bucket does not hold yet, `upload` packages them to models/{sc}/{s}/model.tar.gz with their
digest as object metadata. The endpoint itself is `provision`'s business: it is named after the object's ETag,
which exists only once the object does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from plexus_infra.core.aws import Clients, call, upload_file
from plexus_infra.core.errors import ApplyError, PlexusError
from plexus_infra.plan import CREATE, UPDATE, Call, Change
from plexus_train.locations import MODELS_DIR, keys, model_dir, s3_uri, split_s3_uri
from plexus_train.packaging import packaged_files, tree_digest, write_tarball
from plexus_train.scorecards import Score
from plexus_train.waiting import StatusReporter

DIGEST_METADATA = "plexus-model-sha256"  # S3 user metadata: the tree_digest of the local artifacts uploaded
UPLOAD_LOCAL, USE_BUCKET = "upload local", "use bucket"
S3_OBJECT = "s3_object"  # the kind of the upload's change in a plan


@dataclass(frozen=True)
class LocalModel:
    """+ directory: the local artifacts, models/{sc}/{s}/
    + digest: their `packaging.tree_digest` (equal digests, equal model.tar.gz)
    + modified: the newest file's mtime (seconds since the epoch), i.e. when training wrote them
    """

    directory: Path
    digest: str
    modified: float


@dataclass(frozen=True)
class ModelSource:
    """+ uri: the model.tar.gz the endpoint serves
    + version: its S3 ETag (part of the model's name, so a new object gives a new model and config); None while
      `upload` is still to put it there
    + origin: where it came from and why it was chosen, one line for people
    + upload: the local artifacts to upload to `uri` first (None: the object is there)
    + why: why it was chosen (`choose_model`'s reason)
    + replaces: the object the upload replaces, its ETag and digest (None: there is none)
    """

    uri: str
    version: str | None
    origin: str
    upload: LocalModel | None = None
    why: str = ""
    replaces: dict[str, str | None] | None = None


def choose_model(local: LocalModel | None, stored: dict[str, Any] | None) -> tuple[str, str]:
    """Pure: (UPLOAD_LOCAL or USE_BUCKET, why) given the local artifacts (None when there are none) and the head_object
    answer for the bucket's models/{sc}/{s}/model.tar.gz (None when absent; never both None).

    An object this tool uploaded from local artifacts carries their digest (DIGEST_METADATA): a different
    local digest means a retrain, so the new artifacts replace it. An object without one came from a SageMaker
    job (`plexus train --platform sagemaker` copies it there): whichever was trained last is served.

    Example: `choose_model(None, {"ETag": '"e"'}) == (USE_BUCKET, "no local artifacts")`
    """
    # No local model: serve the bucket's, whatever made it.
    if local is None:
        return USE_BUCKET, "no local artifacts"
    # Local model and nothing in the bucket yet?
    if stored is None:
        return UPLOAD_LOCAL, "the bucket holds no model yet"
    uploaded = (stored.get("Metadata") or {}).get(DIGEST_METADATA)
    # The bucket holds exactly these artifacts?
    if uploaded == local.digest:
        return USE_BUCKET, f"the local artifacts, uploaded earlier (sha256 {local.digest[:12]})"
    # The bucket holds earlier local artifacts: retrained since?
    if uploaded is not None:
        return (
            UPLOAD_LOCAL,
            f"the local artifacts changed since their upload (sha256 {uploaded[:12]} → {local.digest[:12]})",
        )
    # The bucket holds a SageMaker job's model: trained before or after the local one?
    if local.modified > stored["LastModified"].timestamp():
        return (
            UPLOAD_LOCAL,
            f"the local artifacts are newer than the bucket's model (a SageMaker job's, {_when(stored)})",
        )
    return USE_BUCKET, (
        f"a SageMaker job's model ({_when(stored)}), newer than the local artifacts in {local.directory}/, "
        "which are not used"
    )


def _when(stored: dict[str, Any]) -> str:
    return f"stored {stored['LastModified'].strftime('%Y-%m-%d %H:%M:%S %Z').strip()}"


def local_model(directory: Path) -> LocalModel | None:
    """The local artifacts in `directory`, or None when training has not written them (no config.json)."""
    if not (directory / "config.json").is_file():
        return None
    modified = max(path.stat().st_mtime for path in packaged_files(directory))
    return LocalModel(directory, tree_digest(directory), modified)


def find_model(
    clients: Clients, bucket: str, score: Score, explicit: str | None = None, models_root: Path = MODELS_DIR
) -> ModelSource:
    """The model to serve (reads only): the given URI, else the local artifacts or the bucket's
    models/{sc}/{s}/model.tar.gz, as `choose_model` decides. Local artifacts that are not in the bucket yet come
    back with `upload` set: `upload` puts them there."""
    if explicit:
        found = _head(clients, explicit)
        if found is None:
            raise PlexusError(f"--model-s3-uri {explicit}: no such object")
        return ModelSource(explicit, found["ETag"], f"{explicit} (--model-s3-uri)")
    canonical = s3_uri(bucket, keys(score).model)
    directory = model_dir(score, models_root)
    local = local_model(directory)
    found = _head(clients, canonical)
    if local is None and found is None:
        raise PlexusError(
            f"no model for {score.path}: not at {canonical}, nor in {directory}/; run `plexus train` first"
        )
    choice, why = choose_model(local, found)
    if choice == USE_BUCKET or local is None:  # choose_model uploads only local artifacts
        return ModelSource(canonical, found["ETag"], f"{canonical}: {why}", why=why)
    origin = f"{canonical}: to be uploaded from {local.directory}/, {why}"
    replaced = None
    if found is not None:
        replaced = {"ETag": found["ETag"], DIGEST_METADATA: (found.get("Metadata") or {}).get(DIGEST_METADATA)}
    return ModelSource(canonical, None, origin, upload=local, why=why, replaces=replaced)


def upload_call(uri: str, local: LocalModel) -> Call:
    """The request `upload` makes, as a plan shows it (boto3's managed transfer sends it as one PutObject, or as a
    multipart upload above its threshold)."""
    bucket, key = split_s3_uri(uri)
    return Call("s3", "PutObject", {"Bucket": bucket, "Key": key, "Metadata": {DIGEST_METADATA: local.digest}}, uri)


def upload_changes(source: ModelSource) -> tuple[Change, ...]:
    """The upload as a plan shows it: `s3_object.{bucket}/{key}`, created or replaced with the local artifacts;
    nothing when the object is there already."""
    local = source.upload
    if local is None:
        return ()
    after = {DIGEST_METADATA: local.digest, "source": f"{local.directory}/"}
    address = f"{S3_OBJECT}.{'/'.join(split_s3_uri(source.uri))}"
    calls = (upload_call(source.uri, local),)
    if source.replaces is None:
        return (Change(address, CREATE, None, after, tuple(after), source.why, calls=calls),)
    return (Change(address, UPDATE, source.replaces, after, (DIGEST_METADATA,), source.why, calls=calls),)


def upload(clients: Clients, source: ModelSource, reporter: StatusReporter) -> ModelSource:
    """Put `source`'s local artifacts at its URI (a no-op for a source without `upload`); the source answered
    carries the new object's ETag."""
    local = source.upload
    if local is None:
        return source
    request = upload_call(source.uri, local).params
    with tempfile.TemporaryDirectory() as staging:
        tarball = write_tarball(local.directory, Path(staging) / "model.tar.gz")
        reporter.status(f"uploading {local.directory}/ to {source.uri}")
        upload_file(clients.s3, tarball, request["Bucket"], request["Key"], metadata=request["Metadata"])
    answer = call(clients.s3.head_object, source.uri, error=ApplyError, Bucket=request["Bucket"], Key=request["Key"])
    origin = f"{source.uri}: uploaded from {local.directory}/, {source.why}"
    return replace(source, version=answer["ETag"], origin=origin, upload=None)


def _head(clients: Clients, uri: str) -> dict[str, Any] | None:
    bucket, key = split_s3_uri(uri)
    return call(clients.s3.head_object, uri, absent=("404", "NoSuchKey"), Bucket=bucket, Key=key)
