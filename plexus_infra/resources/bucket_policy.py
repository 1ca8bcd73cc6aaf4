"""The bucket policy: TLS-only by default, plus any statements the manifest declares. Compared
semantically (plexus_infra.policy), so a reordered or re-encoded document is not a change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from plexus_infra.plan import Call, Change, noop
from plexus_infra.policy import canonical_json, policies_equal
from plexus_infra.resources.base import live_policy, within_size
from plexus_infra.resources.bucket import BucketSetting, bucket_arn, s3_call

BUCKET_POLICY_LIMIT = 20_480  # S3: 20 KB


def policy_equal(live: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    """No policy equals only no policy; two documents compare semantically."""
    if live is None or wanted is None:
        return live is wanted
    return policies_equal(live, wanted)


def tls_only_statement(arn: str) -> dict[str, Any]:
    """Deny every request that does not use TLS (aws:SecureTransport false)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class S3BucketPolicy(BucketSetting):
    kind = "s3_bucket_policy"
    noop_reason = "bucket policy already as declared"
    read_operation = "get_bucket_policy"
    write_operation = "PutBucketPolicy"
    absent_codes = ("NoSuchBucketPolicy",)
    equal: ClassVar = {"policy": policy_equal}

    def document(self) -> dict[str, Any] | None:
        spec = self.ctx.env.bucket
        statements = [tls_only_statement(bucket_arn(self.ctx))] if spec.enforce_tls else []
        statements += [dict(statement) for statement in spec.policy_statements]
        if not statements:
            return None
        document = {"Version": "2012-10-17", "Statement": statements}
        return within_size(document, BUCKET_POLICY_LIMIT, f"bucket {self.name}'s policy")

    def desired(self) -> dict[str, Any]:
        return {"policy": self.document()}

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"policy": live_policy(raw["Policy"], f"bucket {self.name}")}

    def write_arguments(self) -> dict[str, Any]:
        return {"Policy": canonical_json(self.document())}

    def compare(self, observed: dict[str, Any] | None) -> Change:
        if observed is None and self.document() is None:
            return noop(self.address, None, "no bucket policy declared and none present")
        return super().compare(observed)

    def calls(self, change: Change) -> Iterable[Call]:
        if self.document() is None:
            yield s3_call("DeleteBucketPolicy", self.name)
        else:
            yield from super().calls(change)
