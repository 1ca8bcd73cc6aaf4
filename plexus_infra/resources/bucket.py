"""The S3 bucket (existence, region, tags, removal guard) and its small settings: versioning, default
encryption, public access block and object ownership. Bucket policy and lifecycle have modules of their own."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from plexus_infra.aws import Clients, call, until_consistent, wait_for
from plexus_infra.errors import ApplyError, GuardError
from plexus_infra.manifest.model import REMOVAL_POLICY_TAG
from plexus_infra.plan import CREATE, DELETE, Change, noop
from plexus_infra.resources.base import (
    Progress,
    Removable,
    Resource,
    claim,
    left_alone,
    owned_by,
    tag_dict,
    tag_list,
)

BUCKET_ABSENT = ("404", "NoSuchBucket", "NotFound")
DELETE_BATCH = 1000


class Bucket(Removable):
    """The training bucket. Its tags carry ownership and the removal guard, so the guard lives on the
    bucket itself: a manifest edit from retain to destroy only counts once an apply has moved the tag."""

    kind = "s3_bucket"
    noop_reason = "exists with the manifest's region and tags"

    @property
    def name(self) -> str:
        return self.ctx.env.bucket.name

    def desired(self) -> dict[str, Any]:
        env = self.ctx.env
        return {"region": env.region, "tags": {**env.resource_tags, REMOVAL_POLICY_TAG: env.removal_policy}}

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        head = call(clients.s3.head_bucket, f"bucket {self.name}", absent=BUCKET_ABSENT, Bucket=self.name)
        if head is None:
            return None
        headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = head.get("BucketRegion") or headers.get("x-amz-bucket-region") or "us-east-1"
        tagging = call(
            clients.s3.get_bucket_tagging,
            f"bucket {self.name}",
            absent=("NoSuchTagSet", *BUCKET_ABSENT),
            Bucket=self.name,
        )
        return {"region": region, "tags": tag_dict((tagging or {}).get("TagSet"))}

    def diff(self, observed: dict[str, Any] | None) -> Change:
        if observed is not None and observed["region"] != self.ctx.env.region:
            raise GuardError(
                f"bucket {self.name} is in {observed['region']} but {self.ctx.env.source} says "
                f"{self.ctx.env.region}; S3 cannot move a bucket: change region or bucket.name"
            )
        return claim(super().diff(observed), observed and observed["tags"], self.ctx.env, self.desired())

    def apply(self, clients: Clients, change: Change) -> None:
        if change.actions == CREATE:
            self._create(clients)
        until_consistent(
            lambda: call(
                clients.s3.put_bucket_tagging,
                f"bucket {self.name}",
                error=ApplyError,
                Bucket=self.name,
                Tagging={"TagSet": tag_list(self.desired()["tags"])},
            )
        )

    def _create(self, clients: Clients) -> None:
        region = self.ctx.env.region
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        call(
            clients.s3.create_bucket,
            f"bucket {self.name}",
            absent=("BucketAlreadyOwnedByYou",),  # a previous, interrupted apply created it: carry on
            error=ApplyError,
            Bucket=self.name,
            **location,
        )
        wait_for(clients.s3, "bucket_exists", f"bucket {self.name}", Bucket=self.name)

    def destroy(self, observed: dict[str, Any] | None) -> Change:
        env = self.ctx.env
        if observed is None:
            return noop(self.address, None, "already absent")
        if not owned_by(observed["tags"], env):
            return left_alone(self.address, observed)
        if env.removal_policy != "destroy":
            return noop(
                self.address, observed, "retained: removal_policy is retain; a later apply picks the bucket up again"
            )
        if observed["tags"].get(REMOVAL_POLICY_TAG) != "destroy":
            return noop(
                self.address,
                observed,
                "retained: the bucket's plexus:removal-policy tag still says retain; "
                "run apply to move it before destroy can delete the bucket",
            )
        return Change(self.address, DELETE, observed, None, (), "empties every object version, then deletes the bucket")

    def delete(self, clients: Clients, change: Change, progress: Progress | None = None) -> None:
        removed = 0
        previous: list[dict[str, str]] = []
        while batch := self._next_batch(clients):
            if batch == previous:
                raise ApplyError(f"s3:DeleteObjects bucket {self.name}: deleted versions are still listed; run again")
            answer = call(
                clients.s3.delete_objects,
                f"bucket {self.name}",
                error=ApplyError,
                Bucket=self.name,
                Delete={"Objects": batch, "Quiet": True},
            )
            failed = (answer or {}).get("Errors") or []
            if failed:
                first = failed[0]
                raise ApplyError(
                    f"s3:DeleteObjects bucket {self.name}: {len(failed)} objects not deleted, "
                    f"first {first.get('Key')}: {first.get('Code')}"
                )
            removed += len(batch)
            previous = batch
            if progress:
                progress(f"emptying {self.name}", removed, None)
        call(clients.s3.delete_bucket, f"bucket {self.name}", absent=BUCKET_ABSENT, error=ApplyError, Bucket=self.name)

    def _next_batch(self, clients: Clients) -> list[dict[str, str]]:
        """Up to 1000 object versions and delete markers from a fresh listing. Listing from the start each
        round means nothing is skipped, however deletions shift the listing's pages (moto's do)."""
        page = call(
            clients.s3.list_object_versions,
            f"bucket {self.name}",
            absent=BUCKET_ABSENT,
            error=ApplyError,
            Bucket=self.name,
            MaxKeys=DELETE_BATCH,
        )
        entries = [*(page or {}).get("Versions", ()), *(page or {}).get("DeleteMarkers", ())]
        return [{"Key": entry["Key"], "VersionId": entry["VersionId"]} for entry in entries[:DELETE_BATCH]]


class BucketSetting(Resource):
    """One bucket sub-configuration read with one GET (`read_operation`) and written with one PUT."""

    read_operation: ClassVar[str]
    write_operation: ClassVar[str]
    absent_codes: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        return self.ctx.env.bucket.name

    @abstractmethod
    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The GET answer in the shape of `desired`, AWS's server-filled defaults made explicit."""

    @abstractmethod
    def write_arguments(self) -> dict[str, Any]:
        """The PUT's arguments (besides Bucket) for the desired configuration."""

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        raw = call(
            getattr(clients.s3, self.read_operation),
            f"bucket {self.name}",
            absent=(*self.absent_codes, *BUCKET_ABSENT),
            Bucket=self.name,
        )
        return None if raw is None else self.normalize(raw)

    def apply(self, clients: Clients, change: Change) -> None:
        write = getattr(clients.s3, self.write_operation)
        arguments = self.write_arguments()
        until_consistent(lambda: call(write, f"bucket {self.name}", error=ApplyError, Bucket=self.name, **arguments))


def versioning_equal(live: str | None, wanted: str) -> bool:
    """A never-versioned bucket (GET returns `{}`) is as unversioned as a Suspended one."""
    off = {"Suspended", "Disabled"}
    return live == wanted or (live in off and wanted in off)


class Versioning(BucketSetting):
    kind = "s3_bucket_versioning"
    noop_reason = "versioning already as declared"
    read_operation = "get_bucket_versioning"
    write_operation = "put_bucket_versioning"
    equal: ClassVar = {"status": versioning_equal}

    def desired(self) -> dict[str, Any]:
        return {"status": "Enabled" if self.ctx.env.bucket.versioning else "Suspended"}

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"status": raw.get("Status", "Disabled")}

    def write_arguments(self) -> dict[str, Any]:
        return {"VersioningConfiguration": {"Status": self.desired()["status"]}}


def kms_key_reference(value: str) -> str:
    """What a KMS key reference names, without the ARN around it: `arn:aws:kms:r:a:key/ID` → `ID`,
    `arn:aws:kms:r:a:alias/NAME` → `alias/NAME`; a bare key id or alias name is already that."""
    if value.startswith("arn:"):
        value = value.split(":", 5)[-1]
    return value.removeprefix("key/")


def kms_key_equal(live: str | None, wanted: str | None) -> bool:
    """A key id equals the key ARN that ends with it, an alias name its alias ARN (S3 may answer with either
    form). A key and an alias never compare equal: which key an alias names is not known offline."""
    if live is None or wanted is None:
        return live is wanted
    return kms_key_reference(live) == kms_key_reference(wanted)


class Encryption(BucketSetting):
    kind = "s3_bucket_encryption"
    noop_reason = "default encryption already as declared"
    read_operation = "get_bucket_encryption"
    write_operation = "put_bucket_encryption"
    absent_codes = ("ServerSideEncryptionConfigurationNotFoundError",)
    equal: ClassVar = {"kms_key_id": kms_key_equal}

    def desired(self) -> dict[str, Any]:
        spec = self.ctx.env.bucket.encryption
        kms = spec.algorithm == "SSE-KMS"
        return {
            "algorithm": "aws:kms" if kms else "AES256",
            "kms_key_id": spec.kms_key_id if kms else None,
            "bucket_key": spec.bucket_key,
        }

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        """`BucketKeyEnabled` absent reads back as False: the same thing."""
        rules = raw.get("ServerSideEncryptionConfiguration", {}).get("Rules") or [{}]
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
        return {
            "algorithm": default.get("SSEAlgorithm"),
            "kms_key_id": default.get("KMSMasterKeyID"),
            "bucket_key": bool(rules[0].get("BucketKeyEnabled", False)),
        }

    def write_arguments(self) -> dict[str, Any]:
        wanted = self.desired()
        by_default = {"SSEAlgorithm": wanted["algorithm"]}
        if wanted["kms_key_id"]:
            by_default["KMSMasterKeyID"] = wanted["kms_key_id"]
        rule = {"ApplyServerSideEncryptionByDefault": by_default, "BucketKeyEnabled": wanted["bucket_key"]}
        return {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}


PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


class PublicAccessBlock(BucketSetting):
    kind = "s3_bucket_public_access_block"
    noop_reason = "public access block already as declared"
    read_operation = "get_public_access_block"
    write_operation = "put_public_access_block"
    absent_codes = ("NoSuchPublicAccessBlockConfiguration",)

    def desired(self) -> dict[str, Any]:
        return dict.fromkeys(PUBLIC_ACCESS_FLAGS, self.ctx.env.bucket.block_public_access)

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        config = raw.get("PublicAccessBlockConfiguration", {})
        return {flag: bool(config.get(flag, False)) for flag in PUBLIC_ACCESS_FLAGS}

    def write_arguments(self) -> dict[str, Any]:
        return {"PublicAccessBlockConfiguration": self.desired()}


class OwnershipControls(BucketSetting):
    kind = "s3_bucket_ownership_controls"
    noop_reason = "object ownership already as declared"
    read_operation = "get_bucket_ownership_controls"
    write_operation = "put_bucket_ownership_controls"
    absent_codes = ("OwnershipControlsNotFoundError",)

    def desired(self) -> dict[str, Any]:
        return {"object_ownership": self.ctx.env.bucket.object_ownership}

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        rules = raw.get("OwnershipControls", {}).get("Rules") or [{}]
        return {"object_ownership": rules[0].get("ObjectOwnership")}

    def write_arguments(self) -> dict[str, Any]:
        return {"OwnershipControls": {"Rules": [{"ObjectOwnership": self.desired()["object_ownership"]}]}}
