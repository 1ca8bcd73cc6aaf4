"""Each normalization the diff relies on: the pair it equates, and a near miss it must not.

Whole observe → diff cases live as data files (tests/test_resources_fixtures.py); these pin the named
helpers one by one. Policy documents are covered in tests/test_policy.py.
"""

from __future__ import annotations

import copy
from typing import Any

from plexus_infra.core.tags import tag_dict, tag_list, tags_to_set
from plexus_infra.plan import compare
from plexus_infra.resources.bucket import kms_key_equal, kms_key_reference, versioning_equal
from plexus_infra.resources.bucket_policy import policy_equal, tls_only_statement
from plexus_infra.resources.lifecycle import canonical_rule, canonical_rules, rule_prefix, transition_set
from plexus_infra.resources.role import policy_maps_equal

KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KEY}"
TLS = {"Version": "2012-10-17", "Statement": [tls_only_statement("arn:aws:s3:::b")]}


def rule(**fields: Any) -> dict[str, Any]:
    return {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "p/"}, "Expiration": {"Days": 7}, **fields}


# --- lifecycle ---------------------------------------------------------------------------------------------


def test_legacy_prefix_equals_filter_prefix() -> None:
    legacy = {k: v for k, v in rule(Prefix="p/").items() if k != "Filter"}
    assert canonical_rule(legacy) == canonical_rule(rule())


def test_legacy_prefix_other_value_differs() -> None:
    legacy = {k: v for k, v in rule(Prefix="q/").items() if k != "Filter"}
    assert canonical_rule(legacy) != canonical_rule(rule())


def test_empty_filter_equals_empty_prefix_and_no_filter() -> None:
    assert rule_prefix({"Filter": {}}) == rule_prefix({"Filter": {"Prefix": ""}}) == rule_prefix({}) == ""


def test_empty_filter_differs_from_a_prefix() -> None:
    assert canonical_rule(rule(Filter={})) != canonical_rule(rule(Filter={"Prefix": "p/"}))


def test_and_prefix_equals_filter_prefix_but_not_with_a_tag() -> None:
    assert canonical_rule(rule(Filter={"And": {"Prefix": "p/"}})) == canonical_rule(rule())
    tagged = rule(Filter={"And": {"Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}]}})
    assert canonical_rule(tagged) != canonical_rule(rule())


def test_transitions_order_does_not_matter() -> None:
    ia, glacier = {"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}
    assert transition_set({"Transitions": [ia, glacier]}) == transition_set({"Transitions": [glacier, ia]})


def test_transition_days_differ() -> None:
    assert transition_set({"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}) != transition_set(
        {"Transitions": [{"Days": 31, "StorageClass": "GLACIER"}]}
    )


def test_transitions_by_date_and_by_days_sort_without_error_and_differ() -> None:
    by_date = {"Date": "2030-01-01T00:00:00Z", "StorageClass": "GLACIER"}
    by_days = {"Days": 30, "StorageClass": "STANDARD_IA"}
    mixed = transition_set({"Transitions": [by_date, by_days]})
    assert mixed == transition_set({"Transitions": [by_days, by_date]})
    assert mixed != transition_set({"Transitions": [{**by_date, "Days": 90}, by_days]})


def test_transition_default_minimum_object_size_is_not_a_rule() -> None:
    from plexus_infra.resources.lifecycle import S3BucketLifecycle

    normalize = S3BucketLifecycle.normalize
    plain = {"Rules": [rule()]}
    with_size = {"Rules": [rule()], "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K"}
    assert normalize(None, with_size) == normalize(None, plain)  # type: ignore[arg-type]


def test_unnamed_rules_in_another_order_are_the_same_configuration() -> None:
    a = {k: v for k, v in rule(Filter={"Prefix": "a/"}).items() if k != "ID"}
    b = {k: v for k, v in rule(Filter={"Prefix": "b/"}).items() if k != "ID"}
    assert canonical_rules([a, b]) == canonical_rules([b, a])


def test_an_edited_unnamed_rule_is_another_rule() -> None:
    a = {k: v for k, v in rule().items() if k != "ID"}
    edited = {**a, "Expiration": {"Days": 8}}
    assert canonical_rules([a]).keys() != canonical_rules([edited]).keys()


def test_unnamed_rule_differs_from_the_same_rule_with_an_id() -> None:
    unnamed = {k: v for k, v in rule().items() if k != "ID"}
    assert canonical_rules([unnamed]) != canonical_rules([rule()])


def test_fields_outside_the_canonical_names_still_count() -> None:
    noncurrent = rule(NoncurrentVersionExpiration={"NoncurrentDays": 30})
    newer = rule(NoncurrentVersionExpiration={"NoncurrentDays": 30, "NewerNoncurrentVersions": 3})
    marker = rule(Expiration={"ExpiredObjectDeleteMarker": True})
    assert canonical_rule(noncurrent) != canonical_rule(newer)
    assert canonical_rule(marker) != canonical_rule(rule(Expiration={}))
    assert canonical_rule(rule(NoncurrentVersionTransitions=[{"NoncurrentDays": 30, "StorageClass": "GLACIER"}])) != (
        canonical_rule(rule())
    )


def test_canonical_rule_does_not_modify_its_input() -> None:
    original = rule(Transitions=[{"Days": 90, "StorageClass": "GLACIER"}, {"Days": 30, "StorageClass": "STANDARD_IA"}])
    kept = copy.deepcopy(original)
    canonical_rules([original])
    assert original == kept


# --- versioning, encryption -------------------------------------------------------------------------------


def test_never_versioned_equals_suspended() -> None:
    assert versioning_equal("Disabled", "Suspended")


def test_never_versioned_differs_from_enabled() -> None:
    assert not versioning_equal("Disabled", "Enabled")
    assert not versioning_equal("Suspended", "Enabled")
    assert not versioning_equal(None, "Suspended")


def test_bucket_key_absent_reads_back_as_false() -> None:
    from plexus_infra.resources.bucket import S3BucketEncryption

    def by_default(**rule: Any) -> dict[str, Any]:
        return {"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]}}

    absent = S3BucketEncryption.normalize(None, by_default(SSEAlgorithm="AES256"))  # type: ignore[arg-type]
    explicit = by_default(SSEAlgorithm="AES256")
    explicit["ServerSideEncryptionConfiguration"]["Rules"][0]["BucketKeyEnabled"] = False
    enabled = copy.deepcopy(explicit)
    enabled["ServerSideEncryptionConfiguration"]["Rules"][0]["BucketKeyEnabled"] = True
    assert absent == S3BucketEncryption.normalize(None, explicit)  # type: ignore[arg-type]
    assert absent != S3BucketEncryption.normalize(None, enabled)  # type: ignore[arg-type]


def test_kms_key_id_equals_its_arn() -> None:
    assert kms_key_equal(KEY_ARN, KEY)
    assert kms_key_equal(KEY, KEY_ARN)
    assert kms_key_reference(KEY_ARN) == KEY


def test_kms_key_id_differs_from_another_keys_arn() -> None:
    assert not kms_key_equal(KEY_ARN.replace("1234abcd", "9999abcd"), KEY)


def test_kms_alias_equals_its_arn_but_not_the_key() -> None:
    alias_arn = "arn:aws:kms:us-east-1:123456789012:alias/plexus"
    assert kms_key_equal(alias_arn, "alias/plexus")
    assert not kms_key_equal("alias/plexus", KEY)
    assert not kms_key_equal(alias_arn, KEY_ARN)


def test_no_kms_key_equals_only_no_key() -> None:
    assert kms_key_equal(None, None)
    assert not kms_key_equal(None, KEY)
    assert not kms_key_equal(KEY, None)


# --- tags, policies -----------------------------------------------------------------------------------------


def test_tag_list_equals_tag_dict_in_any_order() -> None:
    tags = [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]
    assert tag_dict(tags) == tag_dict(list(reversed(tags))) == {"a": "1", "b": "2"}
    assert tag_list(tag_dict(tags)) == sorted(tags, key=lambda t: t["Key"])


def test_tag_value_difference_is_not_equal() -> None:
    assert tag_dict([{"Key": "a", "Value": "1"}]) != tag_dict([{"Key": "a", "Value": "2"}])
    assert tag_dict(None) == tag_dict([]) == {}


def test_only_missing_or_different_tags_are_sent() -> None:
    assert tags_to_set({"a": "1", "b": "2", "x": "9"}, {"a": "1", "b": "3", "c": "4"}) == {"b": "3", "c": "4"}
    assert tags_to_set({"a": "1"}, {"a": "1"}) == {}


def test_no_bucket_policy_equals_only_no_policy() -> None:
    assert policy_equal(None, None)
    assert not policy_equal(None, TLS)
    assert not policy_equal(TLS, None)
    assert policy_equal(TLS, {**TLS, "Statement": TLS["Statement"][0]})


def test_named_inline_policies_compare_by_name_then_document() -> None:
    assert policy_maps_equal({"p": TLS}, {"p": {**TLS, "Statement": TLS["Statement"][0]}})
    assert not policy_maps_equal({"p": TLS, "by-hand": TLS}, {"p": TLS})
    assert not policy_maps_equal({"q": TLS}, {"p": TLS})
    assert not policy_maps_equal(None, {"p": TLS})


# --- compare() -----------------------------------------------------------------------------------------------


def test_compare_lists_exactly_the_attributes_that_differ_in_desired_order() -> None:
    change = compare("k.n", {"a": 1, "b": 2, "c": 3}, {"c": 4, "a": 1, "b": 5}, noop_reason="same")
    assert change.actions == ("update",)
    assert change.changed == ("c", "b")
    assert change.reason == "differs from the manifest"


def test_compare_uses_semantic_equality_per_attribute() -> None:
    change = compare(
        "k.n", {"p": TLS}, {"p": copy.deepcopy(TLS)}, {"p": policy_equal}, noop_reason="policy as declared"
    )
    assert change.actions == ("no-op",)
    assert change.reason == "policy as declared"
    assert change.before == change.after == {"p": TLS}


def test_compare_without_live_state_creates_every_attribute() -> None:
    change = compare("k.n", None, {"a": 1, "b": None}, noop_reason="same")
    assert change.actions == ("create",)
    assert change.changed == ("a", "b")
    assert change.before is None


def test_compare_ignores_live_attributes_the_manifest_does_not_manage() -> None:
    assert compare("k.n", {"a": 1, "server_only": "x"}, {"a": 1}, noop_reason="same").is_noop
