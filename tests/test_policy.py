"""Policy normalization: each AWS equivalence is shown equating one pair and refusing a near miss."""

from __future__ import annotations

import copy
import datetime
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexus_infra.policy import canonical_json, normalize_policy, parse_policy, policies_equal, policy_diff_lines

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::plexus-training"


def policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    """A policy document around the given statements; `version=None` leaves Version out."""
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return document


def allow(**elements: Any) -> dict[str, Any]:
    """An Allow statement with a default action and resource, overridden by keyword."""
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*", **elements}


def trust(principal: Any) -> dict[str, Any]:
    """A one-statement trust policy for the given principal."""
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def condition(block: dict[str, Any]) -> dict[str, Any]:
    """A one-statement policy whose only variable part is its Condition."""
    return policy(allow(Condition=block))


# --- one value or a list ---------------------------------------------------------------------------------


def test_single_action_equals_one_element_list() -> None:
    assert policies_equal(policy(allow(Action="s3:GetObject")), policy(allow(Action=["s3:GetObject"])))


def test_extra_action_in_list_differs() -> None:
    assert not policies_equal(policy(allow(Action="s3:GetObject")), policy(allow(Action=["s3:GetObject", "s3:*"])))


def test_single_resource_and_not_resource_equal_one_element_lists() -> None:
    statement = {"Effect": "Deny", "NotAction": "s3:GetObject", "NotResource": BUCKET}
    listed = {"Effect": "Deny", "NotAction": ["s3:GetObject"], "NotResource": [BUCKET]}
    assert policies_equal(policy(statement), policy(listed))


def test_resource_differs_from_not_resource() -> None:
    assert not policies_equal(
        policy({"Effect": "Deny", "Action": "s3:*", "Resource": BUCKET}),
        policy({"Effect": "Deny", "Action": "s3:*", "NotResource": BUCKET}),
    )


# --- list and statement order ----------------------------------------------------------------------------


def test_resource_order_does_not_matter() -> None:
    assert policies_equal(
        policy(allow(Resource=[BUCKET, f"{BUCKET}/*"])), policy(allow(Resource=[f"{BUCKET}/*", BUCKET]))
    )


def test_missing_resource_differs() -> None:
    assert not policies_equal(policy(allow(Resource=[BUCKET, f"{BUCKET}/*"])), policy(allow(Resource=[BUCKET])))


def test_statement_order_does_not_matter() -> None:
    read, write = allow(Sid="Read"), allow(Sid="Write", Action="s3:PutObject")
    assert policies_equal(policy(read, write), policy(write, read))


def test_moving_an_action_between_statements_differs() -> None:
    before = policy(allow(Action="s3:GetObject", Resource=BUCKET), allow(Action="s3:ListBucket", Resource="*"))
    after = policy(allow(Action="s3:ListBucket", Resource=BUCKET), allow(Action="s3:GetObject", Resource="*"))
    assert not policies_equal(before, after)


def test_single_statement_object_equals_one_element_list() -> None:
    assert policies_equal({"Version": "2012-10-17", "Statement": allow()}, policy(allow()))


def test_empty_statement_list_differs_from_one_statement() -> None:
    assert not policies_equal(policy(), policy(allow()))


# --- keys ------------------------------------------------------------------------------------------------


def test_key_order_does_not_matter() -> None:
    statement = allow(Sid="Read")
    reversed_keys = dict(reversed(statement.items()))
    assert policies_equal(policy(statement), {"Statement": [reversed_keys], "Version": "2012-10-17"})


def test_element_names_are_case_sensitive() -> None:
    statement = allow()
    renamed = {("action" if key == "Action" else key): value for key, value in statement.items()}
    assert not policies_equal(policy(statement), policy(renamed))


# --- principals ------------------------------------------------------------------------------------------


def test_account_id_principal_equals_root_arn() -> None:
    assert policies_equal(trust({"AWS": ACCOUNT}), trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov", "aws-iso-b"])
def test_account_id_principal_equals_root_arn_in_any_partition(partition: str) -> None:
    assert policies_equal(trust({"AWS": [ACCOUNT]}), trust({"AWS": f"arn:{partition}:iam::{ACCOUNT}:root"}))


def test_account_id_principal_equals_root_arn_in_not_principal() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert policies_equal(
        policy({**deny, "NotPrincipal": {"AWS": ACCOUNT}}),
        policy({**deny, "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}),
    )


def test_different_account_root_arns_differ() -> None:
    assert not policies_equal(
        trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), trust({"AWS": "arn:aws:iam::210987654321:root"})
    )


def test_user_in_account_differs_from_account() -> None:
    assert not policies_equal(trust({"AWS": ACCOUNT}), trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/root"}))


def test_service_principal_is_not_read_as_an_account() -> None:
    assert not policies_equal(trust({"Service": ACCOUNT}), trust({"Service": f"arn:aws:iam::{ACCOUNT}:root"}))


def test_principal_star_equals_aws_star() -> None:
    assert policies_equal(trust("*"), trust({"AWS": "*"}))
    assert policies_equal(trust("*"), trust({"AWS": ["*"]}))


def test_principal_star_differs_from_service_star() -> None:
    assert not policies_equal(trust("*"), trust({"Service": "*"}))


def test_principal_order_and_single_values_do_not_matter() -> None:
    services = ["sagemaker.amazonaws.com", "ec2.amazonaws.com"]
    assert policies_equal(
        trust({"Service": services, "AWS": ACCOUNT}), trust({"AWS": [ACCOUNT], "Service": services[::-1]})
    )


# --- conditions ------------------------------------------------------------------------------------------


def test_condition_nesting_order_does_not_matter() -> None:
    written = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT, "s3:prefix": "data/"},
        "ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:us-east-1:123456789012:*"},
    }
    returned = {
        "ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:us-east-1:123456789012:*"},
        "StringEquals": {"s3:prefix": "data/", "aws:SourceAccount": ACCOUNT},
    }
    assert policies_equal(condition(written), condition(returned))


def test_condition_operator_differs() -> None:
    assert not policies_equal(
        condition({"StringEquals": {"s3:prefix": "data/*"}}), condition({"StringLike": {"s3:prefix": "data/*"}})
    )


def test_condition_values_are_sets() -> None:
    assert policies_equal(
        condition({"StringEquals": {"s3:prefix": ["a/", "b/", "a/"]}}),
        condition({"StringEquals": {"s3:prefix": ["b/", "a/"]}}),
    )
    assert policies_equal(
        condition({"StringEquals": {"s3:prefix": "a/"}}), condition({"StringEquals": {"s3:prefix": ["a/"]}})
    )


def test_condition_value_subset_differs() -> None:
    assert not policies_equal(
        condition({"StringEquals": {"s3:prefix": ["a/", "b/"]}}), condition({"StringEquals": {"s3:prefix": "a/"}})
    )


def test_bool_and_int_condition_values_equal_their_strings() -> None:
    assert policies_equal(
        condition({"Bool": {"aws:SecureTransport": False}}), condition({"Bool": {"aws:SecureTransport": "false"}})
    )
    assert policies_equal(
        condition({"NumericLessThan": {"s3:max-keys": [10, 1]}}),
        condition({"NumericLessThan": {"s3:max-keys": ["1", "10"]}}),
    )


def test_true_differs_from_false() -> None:
    assert not policies_equal(
        condition({"Bool": {"aws:SecureTransport": True}}), condition({"Bool": {"aws:SecureTransport": "false"}})
    )


def test_condition_keys_are_case_insensitive() -> None:
    assert policies_equal(
        condition({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        condition({"IpAddress": {"AWS:sourceip": "10.0.0.0/8"}}),
    )


def test_condition_values_keep_their_case() -> None:
    assert not policies_equal(
        condition({"StringEquals": {"aws:PrincipalTag/team": "ML"}}),
        condition({"StringEquals": {"aws:PrincipalTag/team": "ml"}}),
    )


def test_condition_differs_from_no_condition() -> None:
    assert not policies_equal(condition({"Bool": {"aws:SecureTransport": "false"}}), policy(allow()))


# --- case ------------------------------------------------------------------------------------------------


def test_action_names_are_case_insensitive() -> None:
    assert policies_equal(policy(allow(Action="s3:GetObject")), policy(allow(Action="S3:getobject")))
    assert policies_equal(policy(allow(NotAction="IAM:*")), policy(allow(NotAction=["iam:*"])))


def test_different_actions_differ() -> None:
    assert not policies_equal(policy(allow(Action="s3:GetObject")), policy(allow(Action="s3:GetObjectAcl")))


def test_resource_arns_are_case_sensitive() -> None:
    assert not policies_equal(policy(allow(Resource=f"{BUCKET}/Data/*")), policy(allow(Resource=f"{BUCKET}/data/*")))


# --- significant elements --------------------------------------------------------------------------------


def test_missing_version_differs_from_2012_10_17() -> None:
    assert not policies_equal(policy(allow(), version=None), policy(allow(), version="2012-10-17"))


def test_missing_version_equals_2008_10_17() -> None:
    assert policies_equal(policy(allow(), version=None), policy(allow(), version="2008-10-17"))


def test_renaming_a_sid_is_a_change() -> None:
    assert not policies_equal(policy(allow(Sid="ReadData")), policy(allow(Sid="ReadTrainingData")))


def test_adding_a_sid_is_a_change() -> None:
    assert not policies_equal(policy(allow()), policy(allow(Sid="ReadData")))


def test_policy_id_is_significant() -> None:
    assert not policies_equal(policy(allow()) | {"Id": "a"}, policy(allow()) | {"Id": "b"})


def test_repeated_statement_equals_single_statement() -> None:
    assert policies_equal(policy(allow(), allow()), policy(allow()))


def test_statements_that_differ_in_one_element_do_not_collapse() -> None:
    assert not policies_equal(policy(allow(), allow(Effect="Deny")), policy(allow()))


# --- parsing ---------------------------------------------------------------------------------------------

# A SageMaker trust policy as IAM's GetRole wire response carries it (RFC 3986 percent-encoding).
IAM_WIRE_TRUST_POLICY = (
    "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22"
    "%3A%7B%22Service%22%3A%22sagemaker.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%2C%22Condition"
    "%22%3A%7B%22StringEquals%22%3A%7B%22aws%3ASourceAccount%22%3A%22123456789012%22%7D%2C%22ArnLike%22%3A%7B%22aws"
    "%3ASourceArn%22%3A%22arn%3Aaws%3Asagemaker%3Aus-east-1%3A123456789012%3A%2A%22%7D%7D%7D%5D%7D"
)

SAGEMAKER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["sagemaker.amazonaws.com"]},
            "Action": ["sts:AssumeRole"],
            "Condition": {
                "ArnLike": {"aws:SourceArn": ["arn:aws:sagemaker:us-east-1:123456789012:*"]},
                "StringEquals": {"aws:SourceAccount": 123456789012},
            },
        }
    ],
}


def test_url_encoded_document_from_iam_equals_the_manifest_policy() -> None:
    assert policies_equal(IAM_WIRE_TRUST_POLICY, SAGEMAKER_TRUST_POLICY)


def test_url_encoded_plus_is_a_literal_plus() -> None:
    parsed = parse_policy("%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Resource%22%3A%22a+b%22%7D%5D%7D")
    assert parsed["Statement"][0]["Resource"] == "a+b"


def test_json_text_parses_to_the_same_policy() -> None:
    assert parse_policy(json.dumps(SAGEMAKER_TRUST_POLICY, indent=2)) == SAGEMAKER_TRUST_POLICY


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "neither JSON nor URL-encoded JSON"),
        ("[]", "must be a JSON object, got list"),
        ({"Version": "2012-10-17"}, "has no Statement"),
        ({"Statement": ["s3:*"]}, "statement 1 must be a JSON object"),
        ({"Statement": [allow(), {"Action": "s3:*"}]}, "statement 2 has no Effect"),
        ({"Statement": allow(Principal="123456789012")}, 'Principal must be "\\*" or an object'),
        ({"Statement": allow(Condition={"Bool": "true"})}, "Condition must map operators"),
        ({"Statement": allow(Condition={"DateLessThan": {"aws:CurrentTime": datetime.date(2030, 1, 1)}})}, "not JSON"),
    ],
)
def test_what_is_not_a_policy_is_rejected_with_a_reason(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policy(document)


def test_normalizing_never_mutates_the_input() -> None:
    document = policy(allow(Action=["S3:GetObject"], Principal="*"), version=None)
    pristine = copy.deepcopy(document)
    normalize_policy(document)
    canonical_json(document)
    parse_policy(document)["Statement"].clear()
    assert document == pristine


def test_canonical_form_is_hashable() -> None:
    assert len({normalize_policy(IAM_WIRE_TRUST_POLICY), normalize_policy(SAGEMAKER_TRUST_POLICY)}) == 1


# --- a real bucket policy --------------------------------------------------------------------------------

# The TLS-only policy as the manifest builds it, and as S3's GetBucketPolicy hands the stored text back.
TLS_ONLY_DESIRED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": False}},
        }
    ],
}
TLS_ONLY_LIVE = (
    '{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":{"AWS":"*"},'
    '"Action":"s3:*","Resource":["arn:aws:s3:::plexus-training/*","arn:aws:s3:::plexus-training"],'
    '"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}'
)


def test_tls_only_bucket_policy_equals_its_live_form() -> None:
    assert policies_equal(TLS_ONLY_DESIRED, TLS_ONLY_LIVE)


def test_tls_only_bucket_policy_that_drops_the_object_arn_differs() -> None:
    assert not policies_equal(TLS_ONLY_DESIRED, TLS_ONLY_LIVE.replace('"arn:aws:s3:::plexus-training/*",', ""))


# --- display ---------------------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_indents_two_spaces() -> None:
    assert (
        canonical_json('{"Version": "2012-10-17", "Statement": []}')
        == '{\n  "Statement": [],\n  "Version": "2012-10-17"\n}'
    )


def test_canonical_json_does_not_depend_on_written_order() -> None:
    live = json.loads(TLS_ONLY_LIVE)
    assert canonical_json(TLS_ONLY_LIVE) == canonical_json(live | {"Statement": live["Statement"][::-1]})
    assert canonical_json(policy(allow(Sid="B"), allow(Sid="A"))) == canonical_json(
        policy(allow(Sid="A"), allow(Sid="B"))
    )


def test_canonical_json_keeps_values_as_written() -> None:
    text = canonical_json(policy(allow(Action="S3:GetObject"), allow(Principal={"AWS": ACCOUNT})))
    assert '"S3:GetObject"' in text
    assert f'"{ACCOUNT}"' in text
    assert policies_equal(text, policy(allow(Action="S3:GetObject"), allow(Principal={"AWS": ACCOUNT})))


def test_diff_of_reordered_documents_is_empty() -> None:
    live = json.loads(TLS_ONLY_LIVE)
    assert policy_diff_lines(TLS_ONLY_LIVE, live | {"Statement": [dict(reversed(live["Statement"][0].items()))]}) == []


def test_diff_shows_the_changed_action_inside_its_statement() -> None:
    before = policy(allow(Sid="Read", Action=["s3:GetObject"]), allow(Sid="Write", Action="s3:PutObject"))
    after = policy(
        allow(Sid="Read", Action=["s3:GetObject", "s3:ListBucket"]), allow(Sid="Write", Action="s3:PutObject")
    )
    lines = policy_diff_lines(before, after)
    assert lines[:2] == ["--- before", "+++ after"]
    assert [line for line in lines if line[:1] in "+-" and not line.startswith(("---", "+++"))] == [
        '-        "s3:GetObject"',
        '+        "s3:GetObject",',
        '+        "s3:ListBucket"',
    ]
    assert '       "Sid": "Read"' in lines  # whole-document context names the statement


# --- property: equivalent rewrites keep equality, any one changed string breaks it -----------------------

_names = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
_actions = st.lists(_names.map(lambda name: f"s3:{name}"), min_size=1, max_size=4, unique=True)
_resources = st.lists(_names.map(lambda name: f"{BUCKET}/{name}"), min_size=1, max_size=4, unique=True)


@st.composite
def _policies(draw: st.DrawFn) -> dict[str, Any]:
    """Policies whose statements have distinct Sids, so no two statements collapse into one."""
    count = draw(st.integers(min_value=1, max_value=4))
    statements = [
        {
            "Sid": f"S{index}",
            "Effect": draw(st.sampled_from(["Allow", "Deny"])),
            "Action": draw(_actions),
            "Resource": draw(_resources),
            "Condition": {"StringEquals": {"aws:SourceAccount": draw(st.lists(_names, min_size=1, max_size=3))}},
        }
        for index in range(count)
    ]
    return policy(*statements)


def _rewritten(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """An equivalent document: statements and lists shuffled, one-element lists unwrapped, action case changed."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            items = [(key, rewrite(item)) for key, item in value.items()]
            rng.shuffle(items)
            return dict(items)
        if isinstance(value, list):
            items = [rewrite(item) for item in value]
            rng.shuffle(items)
            return items[0] if len(items) == 1 and rng.random() < 0.5 else items
        return value

    copied = copy.deepcopy(document)
    for statement in copied["Statement"]:
        statement["Action"] = [action.swapcase() if rng.random() < 0.5 else action for action in statement["Action"]]
    return rewrite(copied)


@settings(max_examples=200, deadline=None)
@given(document=_policies(), seed=st.integers())
def test_equivalent_rewrites_keep_policies_equal(document: dict[str, Any], seed: int) -> None:
    assert policies_equal(document, _rewritten(document, random.Random(seed)))


@settings(max_examples=200, deadline=None)
@given(document=_policies(), data=st.data())
def test_changing_one_action_or_resource_breaks_equality(document: dict[str, Any], data: st.DataObject) -> None:
    changed = copy.deepcopy(document)
    statement = data.draw(st.sampled_from(changed["Statement"]))
    element = data.draw(st.sampled_from(["Action", "Resource"]))
    values = statement[element]
    values[data.draw(st.integers(min_value=0, max_value=len(values) - 1))] += "z"  # 'z' is outside the alphabet
    assert not policies_equal(document, changed)
