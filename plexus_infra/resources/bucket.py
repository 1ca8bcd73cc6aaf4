"""The S3 bucket (existence, region, tags, removal guard) and its small settings: versioning, default
encryption, public access block and object ownership. Bucket policy and lifecycle have modules of their own."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, ClassVar

from plexus_infra import environments
from plexus_infra.core.aws import Clients, call
from plexus_infra.core.errors import ApplyError, GuardError
from plexus_infra.core.tags import split_system_tags, tag_dict, tag_list
from plexus_infra.manifest.model import REMOVAL_POLICY_TAG
from plexus_infra.plan import CREATE, DELETE, Call, Change, noop
from plexus_infra.resources.base import NO_EVIDENCE, Context, Evidence, Resource, Tagged, left_alone, owned_by
from plexus_infra.resources.cloudformation import managed_by, stack_managing

BUCKET_ABSENT = ("404", "NoSuchBucket", "NotFound")
DELETE_BATCH = 1000
# What S3 answers a CreateBucket with tags where it takes none (or the credentials lack s3:TagResource).
TAGS_AT_CREATION_REFUSED = ("AccessDenied", "InvalidRequest", "MalformedXML", "InvalidArgument", "NotImplemented")


def bucket_arn(ctx: Context) -> str:
    """The training bucket's ARN in the account's partition."""
    return environments.bucket_arn(ctx.identity.partition, ctx.env.bucket.name)


def s3_call(operation: str, bucket: str, **params: Any) -> Call:
    """A call on the bucket `bucket`: every S3 request here names it."""
    return Call("s3", operation, {"Bucket": bucket, **params}, f"bucket {bucket}", **_s3_call_options(operation))


def _s3_call_options(operation: str) -> dict[str, Any]:
    """Writes retry while a just-created bucket is not visible yet; deletes of what is gone succeed."""
    if operation.startswith("Delete"):
        return {"absent": BUCKET_ABSENT, "consistent": True}
    return {"consistent": operation.startswith("Put")}


class S3Bucket(Tagged):
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
        head = call(
            clients.s3.head_bucket,
            f"bucket {self.name}",
            absent=BUCKET_ABSENT,
            hints=self._forbidden(),
            Bucket=self.name,
        )
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
        user, system = split_system_tags(tag_dict((tagging or {}).get("TagSet")))
        observed = {"region": region, "tags": user, "system_tags": system}
        if system and not owned_by(user, self.ctx.env):
            observed |= managed_by(stack_managing(clients, system))
        if self.ctx.env.removal_policy == "destroy" and user.get(REMOVAL_POLICY_TAG) != "destroy":
            observed["holds_objects"] = self._holds_objects(clients)  # moving the guard: worth one more read
        return observed

    def _holds_objects(self, clients: Clients) -> bool:
        listing = call(clients.s3.list_object_versions, f"bucket {self.name}", Bucket=self.name, MaxKeys=1)
        return bool((listing or {}).get("Versions") or (listing or {}).get("DeleteMarkers"))

    def _forbidden(self) -> dict[str, str]:
        """HeadBucket answers a bare 403 (no body, no code) for both of its causes: say both."""
        hint = (
            "another AWS account owns this bucket name, or these credentials lack s3:ListBucket on it; "
            f"choose another bucket.name in {self.ctx.env.source}, or grant s3:ListBucket"
        )
        return {"403": hint, "AccessDenied": hint}

    def compare(self, observed: dict[str, Any] | None) -> Change:
        if observed is not None and observed["region"] != self.ctx.env.region:
            raise GuardError(
                f"bucket {self.name} is in {observed['region']} but {self.ctx.env.source} says "
                f"{self.ctx.env.region}; S3 cannot move a bucket: change region or bucket.name"
            )
        return super().compare(observed)

    def vouched(self, evidence: Evidence) -> bool:
        """Named by the bucket-name output or the bucket-ARN output (one edited output still leaves the other)."""
        return bool({self.name, bucket_arn(self.ctx)} & evidence.published)

    def calls(self, change: Change) -> Iterable[Call]:
        tags = self.desired()["tags"]
        if change.actions == CREATE:
            yield self._create(tags)
        # PutBucketTagging replaces the whole set, and S3 refuses a set without the bucket's `aws:` tags
        # ("InvalidTag: System Tags cannot be removed by requester"): they go along unchanged.
        system = (change.before or {}).get("system_tags") or {}
        yield s3_call("PutBucketTagging", self.name, Tagging={"TagSet": tag_list({**tags, **system})})

    def _create(self, tags: dict[str, str]) -> Call:
        """CreateBucket, born with its tags (CreateBucketConfiguration.Tags, which needs s3:TagResource), so no
        moment exists when it is untagged. Where S3 refuses tags at creation, or the credentials lack
        s3:TagResource, it is created without and tagged by the PutBucketTagging that follows; this environment's
        outputs, published before the bucket is made, vouch for it meanwhile (Evidence)."""
        region = self.ctx.env.region
        location = {} if region == "us-east-1" else {"LocationConstraint": region}
        untagged = Call(
            "s3",
            "CreateBucket",
            {"Bucket": self.name, **({"CreateBucketConfiguration": location} if location else {})},
            f"bucket {self.name}",
            conflict=("BucketAlreadyOwnedByYou",),  # made meanwhile (or by an interrupted run): plan again
            wait="bucket_exists",
        )
        configuration = {**location, "Tags": tag_list(tags)}
        return replace(
            untagged,
            params={"Bucket": self.name, "CreateBucketConfiguration": configuration},
            fallback=untagged,
            fallback_on=TAGS_AT_CREATION_REFUSED,
        )

    def destroy(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> Change:
        env = self.ctx.env
        if observed is None:
            return noop(self.address, None, "already absent")
        if not self.owned(observed, evidence):
            return left_alone(self.address, observed)
        if env.removal_policy != "destroy":
            return noop(self.address, observed, RETAINED_BY_MANIFEST)
        if observed["tags"].get(REMOVAL_POLICY_TAG) != "destroy":
            return noop(self.address, observed, RETAINED_BY_TAG)
        return Change(
            self.address,
            DELETE,
            observed,
            None,
            (),
            "empties every object version, then deletes the bucket",
            calls=tuple(self.removal(observed)),
        )

    def removal(self, observed: dict[str, Any]) -> Iterable[Call]:
        yield replace(
            s3_call("DeleteObjects", self.name), each=f"up to {DELETE_BATCH} object versions and delete markers"
        )
        yield s3_call("DeleteBucket", self.name)

    def expand(self, clients: Clients, planned: Call) -> Iterator[Call]:
        """DeleteObjects batches, each from a fresh listing: listing from the start each round means nothing is
        skipped, however deletions shift the listing's pages (moto's do)."""
        previous: list[dict[str, str]] = []
        while batch := self._next_batch(clients):
            if batch == previous:
                raise ApplyError(f"s3:DeleteObjects bucket {self.name}: deleted versions are still listed; run again")
            yield replace(planned, params={**planned.params, "Delete": {"Objects": batch, "Quiet": True}}, each=None)
            previous = batch

    def check_answer(self, request: Call, answer: Any) -> None:
        failed = (answer or {}).get("Errors") or [] if request.operation == "DeleteObjects" else []
        if failed:
            first = failed[0]
            raise ApplyError(
                f"{request.label} {request.resource}: {len(failed)} objects not deleted, "
                f"first {first.get('Key')}: {first.get('Code')}"
            )

    def _next_batch(self, clients: Clients) -> list[dict[str, str]]:
        """Up to DELETE_BATCH object versions and delete markers, from the start of the listing."""
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

    def note(self, change: Change) -> str:
        """What destroy keeps, said plainly, whichever guard (manifest or bucket tag) keeps it."""
        if change.is_noop and change.before is not None and change.reason in (RETAINED_BY_MANIFEST, RETAINED_BY_TAG):
            return f"bucket {self.name} and every object in it stay ({change.reason})"
        return ""


RETAINED_BY_MANIFEST = "retained: removal_policy is retain; a later apply picks the bucket up again"
RETAINED_BY_TAG = (
    "retained: the bucket's plexus:removal-policy tag still says retain; "
    "run apply to move it before destroy can delete the bucket"
)


class BucketSetting(Resource):
    """One bucket sub-configuration read with one GET (`read_operation`) and written with one PUT."""

    read_operation: ClassVar[str]  # boto3's method name (get_bucket_versioning)
    write_operation: ClassVar[str]  # the API operation (PutBucketVersioning)
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

    def calls(self, change: Change) -> Iterable[Call]:
        yield s3_call(self.write_operation, self.name, **self.write_arguments())


def versioning_equal(live: str | None, wanted: str) -> bool:
    """A never-versioned bucket (GET returns `{}`) is as unversioned as a Suspended one."""
    off = {"Suspended", "Disabled"}
    return live == wanted or (live in off and wanted in off)


class S3BucketVersioning(BucketSetting):
    kind = "s3_bucket_versioning"
    noop_reason = "versioning already as declared"
    read_operation = "get_bucket_versioning"
    write_operation = "PutBucketVersioning"
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


class S3BucketEncryption(BucketSetting):
    kind = "s3_bucket_encryption"
    noop_reason = "default encryption already as declared"
    read_operation = "get_bucket_encryption"
    write_operation = "PutBucketEncryption"
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


class S3BucketPublicAccessBlock(BucketSetting):
    kind = "s3_bucket_public_access_block"
    noop_reason = "public access block already as declared"
    read_operation = "get_public_access_block"
    write_operation = "PutPublicAccessBlock"
    absent_codes = ("NoSuchPublicAccessBlockConfiguration",)

    def desired(self) -> dict[str, Any]:
        return dict.fromkeys(PUBLIC_ACCESS_FLAGS, self.ctx.env.bucket.block_public_access)

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        config = raw.get("PublicAccessBlockConfiguration", {})
        return {flag: bool(config.get(flag, False)) for flag in PUBLIC_ACCESS_FLAGS}

    def write_arguments(self) -> dict[str, Any]:
        return {"PublicAccessBlockConfiguration": self.desired()}


class S3BucketOwnershipControls(BucketSetting):
    kind = "s3_bucket_ownership_controls"
    noop_reason = "object ownership already as declared"
    read_operation = "get_bucket_ownership_controls"
    write_operation = "PutBucketOwnershipControls"
    absent_codes = ("OwnershipControlsNotFoundError",)

    def desired(self) -> dict[str, Any]:
        return {"object_ownership": self.ctx.env.bucket.object_ownership}

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        rules = raw.get("OwnershipControls", {}).get("Rules") or [{}]
        return {"object_ownership": rules[0].get("ObjectOwnership")}

    def write_arguments(self) -> dict[str, Any]:
        return {"OwnershipControls": {"Rules": [{"ObjectOwnership": self.desired()["object_ownership"]}]}}

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        """Also, when the manifest enforces bucket-owner ownership and the bucket does not yet, the ACL's grants to
        others: S3 refuses BucketOwnerEnforced on a bucket whose ACL grants anyone but its owner
        (InvalidBucketAclWithObjectOwnership), as old buckets' often do. moto does not refuse it."""
        observed = super().observe(clients)
        if self.desired()["object_ownership"] != ENFORCED or (observed or {}).get("object_ownership") == ENFORCED:
            return observed
        acl = call(clients.s3.get_bucket_acl, f"bucket {self.name}", absent=BUCKET_ABSENT, Bucket=self.name)
        grants = acl_grants_to_others(acl) if acl else []
        if not grants:
            return observed
        return {**(observed or {"object_ownership": None}), "acl_grants_to_others": grants}

    def calls(self, change: Change) -> Iterable[Call]:
        if (change.before or {}).get("acl_grants_to_others"):
            yield s3_call("PutBucketAcl", self.name, ACL="private")  # first, or S3 refuses enforcement
        yield from super().calls(change)

    def compare(self, observed: dict[str, Any] | None) -> Change:
        change = super().compare(observed)
        grants = (observed or {}).get("acl_grants_to_others")
        if grants and not change.is_noop:
            reason = f"{change.reason}; its ACL grants {', '.join(grants)}: apply resets it to private first"
            change = replace(change, reason=reason)
        return change


ENFORCED = "BucketOwnerEnforced"


def acl_grants_to_others(acl: dict[str, Any]) -> list[str]:
    """The grants of a GetBucketAcl answer to anyone but the bucket's owner, as `grantee PERMISSION`, sorted.

    Example: a public-read bucket's ACL gives ["AllUsers READ"]
    """
    owner = (acl.get("Owner") or {}).get("ID")
    found = set()
    for grant in acl.get("Grants") or ():
        grantee = grant.get("Grantee") or {}
        if grantee.get("Type") == "CanonicalUser" and grantee.get("ID") == owner:
            continue
        who = (grantee.get("URI") or "").rsplit("/", 1)[-1] or grantee.get("ID") or grantee.get("EmailAddress") or "?"
        found.add(f"{who} {grant.get('Permission', '?')}")
    return sorted(found)
