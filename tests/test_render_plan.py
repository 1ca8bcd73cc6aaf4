"""Plan rendering (a plain-text snapshot of a known diff) and the JSON plan's contract."""

from __future__ import annotations

import json
from typing import Any

from plexus_infra.plan import (
    FORMAT_VERSION,
    Call,
    Change,
    noop,
    summary_line,
)
from plexus_infra.render import plan_text
from plexus_infra.saved_plan import read_saved_plan, saved_plan_document, stale_reasons
from tests.helpers import STAGING_BUCKET as BUCKET
from tests.helpers import STAGING_ROLE as ROLE
from tests.helpers import known_plan

EXPECTED_TEXT = """\
Plan for staging (environments/staging.yaml), account 123456789012, us-east-1

  ~ s3_bucket_versioning.plexus-staging-training  (differs from the manifest)
      ~ status: "Suspended" → "Enabled"
  ~ s3_bucket_policy.plexus-staging-training  (differs from the manifest)
      ~ policy:
           {
             "Statement": [
          -    {
          -      "Action": "s3:GetObject",
          -      "Effect": "Allow",
          -      "Principal": {
          -        "AWS": "arn:aws:iam::111122223333:root"
          -      },
          -      "Resource": "arn:aws:s3:::plexus-staging-training/*",
          -      "Sid": "ByHand"
          -    },
               {
                 "Action": "s3:*",
                 "Condition": {
                   "Bool": {
                     "aws:SecureTransport": "false"
                   }
                 },
                 "Effect": "Deny",
                 "Principal": "*",
                 "Resource": [
                   "arn:aws:s3:::plexus-staging-training",
                   "arn:aws:s3:::plexus-staging-training/*"
                 ],
                 "Sid": "DenyInsecureTransport"
               }
             ],
             "Version": "2012-10-17"
           }
  ~ iam_role_policy_attachments.plexus-staging-sagemaker-training  (differs from the manifest)
      ~ managed_policy_arns: ["arn:aws:iam::aws:policy/AdministratorAccess"] → []
  + ssm_outputs.staging  (does not exist)
      + /plexus/staging/training-bucket-name.tags.project = "plexus"
      + /plexus/staging/training-bucket-name.type = "String"
      + /plexus/staging/training-bucket-name.value = "plexus-staging-training"

Plan: 1 to add, 3 to change, 0 to destroy."""


def test_plan_text_snapshot_shows_symbols_values_policy_diff_and_summary() -> None:
    assert plan_text(known_plan()) == EXPECTED_TEXT


def test_verbose_plan_text_also_says_why_nothing_is_needed() -> None:
    text = plan_text(known_plan(), verbose=True)
    assert f"  = s3_bucket_encryption.{BUCKET}: default encryption already as declared" in text.splitlines()
    assert "default encryption" not in plan_text(known_plan())


def test_policy_diff_shows_no_hunk_header() -> None:
    assert "@@" not in plan_text(known_plan())


def test_destroy_plan_text_lists_deletions_and_the_retention_note() -> None:
    changes = (
        Change("ssm_outputs.staging", ("delete",), {"/p": {"value": "v"}}, None, ("/p",), "removed by destroy"),
        Change(f"iam_role.{ROLE}", ("delete",), {"description": "d"}, None, (), "removed by destroy"),
        noop(f"s3_bucket.{BUCKET}", {"region": "us-east-1"}, "retained (removal_policy: retain)"),
    )
    note = f"removal_policy is retain: bucket {BUCKET} and every object in it stay"
    text = plan_text(known_plan("destroy", changes, (note,)))
    assert text.splitlines() == [
        "Destroy plan for staging (environments/staging.yaml), account 123456789012, us-east-1",
        "",
        "  - ssm_outputs.staging  (removed by destroy)",
        f"  - iam_role.{ROLE}  (removed by destroy)",
        f"  note: {note}",
        "",
        "Destroy: 0 to add, 0 to change, 2 to destroy.",
    ]


def test_replace_counts_as_one_add_and_one_destroy() -> None:
    change = Change("k.n", ("delete", "create"), {"a": 1}, {"a": 2}, ("a",), "must be replaced")
    plan = known_plan(changes=(change,))
    assert summary_line(plan) == "Plan: 1 to add, 0 to change, 1 to destroy."
    assert "  -/+ k.n  (must be replaced)" in plan_text(plan).splitlines()


def test_no_changes_summary_names_the_manifest() -> None:
    quiet = (noop(f"s3_bucket.{BUCKET}", {}, "exists"),)
    assert summary_line(known_plan(changes=quiet)) == "No changes. Infrastructure matches environments/staging.yaml."
    assert summary_line(known_plan("destroy", quiet)) == (
        "No changes. Nothing left to destroy for environments/staging.yaml."
    )


# --- the JSON plan contract ------------------------------------------------------------------------------------

PLAN_KEYS = {
    "format_version",
    "tool",
    "operation",
    "environment",
    "manifest",
    "manifest_digest",
    "account",
    "region",
    "observed_digest",
    "observed",
    "summary",
    "notes",
    "resource_changes",
}
# format 1.1 added `calls` and `managed_by` (additive: a 1.0 reader ignores them)
CHANGE_KEYS = {
    *("address", "kind", "actions", "before", "after", "changed_attributes", "reason", "foreign"),
    *("calls", "managed_by", "data_loss", "data_loss_reasons"),
}
ACTIONS = [["no-op"], ["create"], ["update"], ["delete"], ["delete", "create"], ["create", "delete"]]


def plan_json() -> dict[str, Any]:
    return json.loads(json.dumps(known_plan().to_json()))


def test_contract_plan_has_exactly_the_documented_keys() -> None:
    assert set(plan_json()) == PLAN_KEYS


def test_contract_format_version_is_major_dot_minor_one() -> None:
    assert plan_json()["format_version"] == FORMAT_VERSION
    assert FORMAT_VERSION.split(".")[0] == "1"
    assert plan_json()["tool"] == "plexus-infra"


def test_contract_changes_have_exactly_the_documented_keys_and_verb_lists() -> None:
    for change in plan_json()["resource_changes"]:
        assert set(change) == CHANGE_KEYS
        assert change["actions"] in ACTIONS
        assert change["kind"] == change["address"].split(".", 1)[0]


def test_contract_changes_are_sorted_by_address_and_include_no_ops() -> None:
    addresses = [c["address"] for c in plan_json()["resource_changes"]]
    assert addresses == sorted(addresses)
    assert len(addresses) == len(known_plan().changes)


def test_contract_summary_and_before_after() -> None:
    data = plan_json()
    assert data["summary"] == {"add": 1, "change": 3, "destroy": 0}
    created = next(c for c in data["resource_changes"] if c["actions"] == ["create"])
    assert created["before"] is None
    assert created["reason"] == "does not exist"
    unchanged = next(c for c in data["resource_changes"] if c["actions"] == ["no-op"])
    assert unchanged["before"] == unchanged["after"]
    assert unchanged["changed_attributes"] == []


def test_contract_calls_name_the_iam_action_and_its_parameters() -> None:
    call = Call("s3", "PutBucketTagging", {"Bucket": "b", "Tagging": {"TagSet": []}}, "bucket b", consistent=True)
    assert call.to_json() == {"action": "s3:PutBucketTagging", "params": {"Bucket": "b", "Tagging": {"TagSet": []}}}
    repeated = Call("iam", "DetachRolePolicy", {"RoleName": "r"}, "role r", each="attached managed policy")
    assert repeated.to_json()["for_each"] == "attached managed policy"


def test_a_saved_plan_written_by_to_json_reads_back_and_is_recognised_by_content() -> None:
    text = json.dumps(plan_json())
    assert saved_plan_document(text) == plan_json()
    assert read_saved_plan(text, "p.json") == plan_json()
    assert saved_plan_document("version: 1\nenvironment: staging\n") is None
    assert saved_plan_document('{"version": 1, "environment": "staging"}') is None


def test_stale_reasons_name_the_saved_operation_with_its_article() -> None:
    saved = known_plan("apply").to_json()
    assert "it is an apply plan" in stale_reasons(saved, known_plan("destroy"))
    assert "it is a destroy plan" in stale_reasons(known_plan("destroy").to_json(), known_plan("apply"))
