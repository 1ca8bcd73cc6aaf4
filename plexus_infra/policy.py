"""IAM policy documents: parse, normalize, compare, display. Pure functions, no AWS calls.

There is no state file, so every plan compares the manifest's policy with the one AWS hands back, and AWS
hands back an equivalent document in another shape (URL-encoded, reordered, a bare account id turned into a
root ARN, `"*"` for `{"AWS": "*"}`). Comparing raw JSON would make every plan "change" forever, so we
normalize first: each AWS equivalence is one small function below, named after the claim it makes.

Where AWS's documentation does not settle an equivalence we keep the distinction: a false "changed" costs
one idempotent write, a false "equal" hides drift.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias
from urllib.parse import unquote

Canonical: TypeAlias = "str | tuple[Canonical, ...] | frozenset[Canonical]"
CanonicalPolicy: TypeAlias = frozenset[tuple[str, Canonical]]
Normalizer: TypeAlias = Callable[[Any], Canonical]

# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html
IMPLICIT_VERSION = "2008-10-17"

_ROOT_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::(\d{12}):root$")


def parse_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Read a policy from a dict, a JSON string, or URL-encoded JSON (IAM's wire format), as a new dict.

    + document: the policy; never modified.
    Raises ValueError naming what is wrong when the input is not a policy document.

    Example: parse_policy("%7B%22Statement%22%3A%5B%5D%7D") == {"Statement": []}
    """
    if isinstance(document, str):
        text = document.strip()
        if not text.startswith("{"):
            text = unquote(text)  # RFC 3986 escapes: '+' is a literal plus, so not unquote_plus
        try:
            policy = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"policy document is neither JSON nor URL-encoded JSON: {error}") from None
    else:
        try:  # a JSON round trip copies the input and rejects values AWS could not store (dates, sets)
            policy = json.loads(json.dumps(document))
        except TypeError as error:
            raise ValueError(f"policy document holds a value that is not JSON: {error}") from None
    _check_policy_shape(policy)
    return policy


def normalize_policy(document: str | Mapping[str, Any]) -> CanonicalPolicy:
    """The policy's canonical form: two documents AWS treats as the same policy normalize to equal values.

    + document: the policy as `parse_policy` accepts it; never modified.
    The result is hashable (nested frozensets and tuples of strings), for `==` and for use as a key.

    Example: normalize_policy({"Statement": {"Effect": "Allow", "Action": "S3:GetObject", "Resource": "*"}})
             == normalize_policy({"Version": "2008-10-17",
                                  "Statement": [{"Resource": ["*"], "Action": ["s3:getobject"], "Effect": "Allow"}]})
    """
    return _canonical_mapping(_with_implicit_version(parse_policy(document)), _DOCUMENT_ELEMENTS)


def policies_equal(a: str | Mapping[str, Any], b: str | Mapping[str, Any]) -> bool:
    """Whether AWS treats the two documents as the same policy.

    + a, b: policies as `parse_policy` accepts them.

    Example: policies_equal({"Version": "2012-10-17", "Statement": [...]}, urlencoded_text_from_iam)
    """
    return normalize_policy(a) == normalize_policy(b)


def canonical_json(document: str | Mapping[str, Any]) -> str:
    """Deterministic pretty JSON of the policy: sorted keys, sorted lists, 2-space indent.

    + document: the policy as `parse_policy` accepts it.
    Values are shown as written (no case folding, no ARN rewriting), so it is also what we send to AWS;
    reordering lists is safe because every list in the policy grammar is a set.

    Example: canonical_json('{"Statement": [], "Version": "2012-10-17"}')
             == '{\\n  "Statement": [],\\n  "Version": "2012-10-17"\\n}'
    """
    return json.dumps(_sorted_lists(parse_policy(document)), indent=2, sort_keys=True, ensure_ascii=False)


def policy_diff_lines(before: str | Mapping[str, Any], after: str | Mapping[str, Any]) -> list[str]:
    """A unified diff of the two documents' `canonical_json`, for plan output.

    + before: the live policy; after: the desired one.
    The whole document is kept as context so each changed line is seen inside its statement (sorted keys put
    `Sid` last, beyond the reach of a three-line context).

    Example: policy_diff_lines(live, desired)
             == ["--- before", "+++ after", "@@ -1,12 +1,12 @@", "{", ..., '-  "Action": "s3:GetObject",', ...]
    """
    old, new = canonical_json(before).splitlines(), canonical_json(after).splitlines()
    return list(difflib.unified_diff(old, new, "before", "after", n=max(len(old), len(new)), lineterm=""))


def _check_policy_shape(policy: Any) -> None:
    """Reject what is not a policy up front, so normalization can rely on the grammar's shapes."""
    if not isinstance(policy, dict):
        raise ValueError(f"policy document must be a JSON object, got {type(policy).__name__}")
    if "Statement" not in policy:
        raise ValueError("policy document has no Statement")
    for number, statement in enumerate(_statement_list(policy["Statement"]), start=1):
        if not isinstance(statement, dict):
            raise ValueError(f"policy statement {number} must be a JSON object, got {type(statement).__name__}")
        if "Effect" not in statement:
            raise ValueError(f"policy statement {number} has no Effect")
        for element in ("Principal", "NotPrincipal"):
            if element in statement and statement[element] != "*" and not isinstance(statement[element], dict):
                raise ValueError(f'policy statement {number}: {element} must be "*" or an object')
        condition = statement.get("Condition", {})
        if not isinstance(condition, dict) or not all(isinstance(block, dict) for block in condition.values()):
            raise ValueError(f"policy statement {number}: Condition must map operators to objects of keys")


def _with_implicit_version(policy: dict[str, Any]) -> dict[str, Any]:
    """A missing Version means 2008-10-17, so it equals that version and differs from 2012-10-17.

    The two versions are different languages (2008-10-17 does not expand `${aws:username}`-style variables).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html
    """
    return {"Version": IMPLICIT_VERSION, **policy}


def _statement_list(statement: Any) -> list[Any]:
    """A single statement object equals a list holding just that statement.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html (`<statement_block>`)
    """
    return statement if isinstance(statement, list) else [statement]


def _statement_set(statement: Any) -> frozenset[Canonical]:
    """Statement order does not matter, and a repeated statement is the same statement.

    Evaluation is "an explicit Deny wins, else any Allow", which no statement's position or repetition changes;
    so a live policy that repeats a statement is not drift worth a write.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    """
    return frozenset(_canonical_mapping(item, _STATEMENT_ELEMENTS) for item in _statement_list(statement))


def _scalar_text(value: Any) -> str:
    """Booleans and numbers equal their string forms (`true` == "true", 1 == "1"): IAM compares text.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    """
    return value if isinstance(value, str) else json.dumps(value)


def _string_set(value: Any) -> frozenset[str]:
    """A single value equals a one-element list, and a list's order and repetitions do not matter.

    Holds for Action, NotAction, Resource, NotResource, each Principal type and each Condition key's values.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html (`<action_string>` lists)
    """
    return frozenset(map(_scalar_text, value if isinstance(value, list) else [value]))


def _action_set(value: Any) -> frozenset[str]:
    """Action names are case-insensitive (`s3:GetObject` == `S3:getobject`); Resource ARNs are not, so only
    Action and NotAction are folded.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
    """
    return frozenset(action.lower() for action in _string_set(value))


def _wildcard_principal(value: str | dict[str, Any]) -> dict[str, Any]:
    """`"Principal": "*"` equals `"Principal": {"AWS": "*"}` (everyone, including anonymous callers).

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-anonymous
    """
    return {"AWS": "*"} if value == "*" else value


def _account_id(principal: str) -> str:
    """An account's root ARN in any partition equals its bare 12-digit id as an AWS principal.

    AWS stores `123456789012` as `arn:aws:iam::123456789012:root`; we fold the other way because a bare id
    carries no partition (a policy only ever lives in one, so dropping it loses nothing).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts
    """
    match = _ROOT_ARN.match(principal)
    return match.group(1) if match else principal


def _principal_set(value: str | dict[str, Any]) -> frozenset[Canonical]:
    """A principal is a set of (type, ids); type names keep their case, as the grammar spells them."""
    return frozenset((kind, _principal_ids(kind, ids)) for kind, ids in _wildcard_principal(value).items())


def _principal_ids(kind: str, ids: Any) -> frozenset[str]:
    """One principal type's ids as a set; account ids are folded only under `AWS` (a `Service` is no account)."""
    principals = _string_set(ids)
    return frozenset(map(_account_id, principals)) if kind == "AWS" else principals


def _condition_set(value: dict[str, dict[str, Any]]) -> frozenset[Canonical]:
    """Conditions are a set of (operator, key, values): nesting and key order do not matter, and condition
    key names are case-insensitive (`aws:SourceIp` == `AWS:sourceip`).

    Operators keep their case and values keep theirs (whether `StringEquals` folds case is the operator's call).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
    """
    return frozenset(
        (operator, key.lower(), _string_set(values))
        for operator, block in value.items()
        for key, values in block.items()
    )


def _freeze(value: Any) -> Canonical:
    """Any other element compares exactly, except that object key order never matters (JSON objects are
    unordered); lists outside the grammar's sets keep their order."""
    if isinstance(value, dict):
        return frozenset((key, _freeze(item)) for key, item in value.items())
    if isinstance(value, list):
        return tuple(map(_freeze, value))
    return _scalar_text(value)


_DOCUMENT_ELEMENTS: dict[str, Normalizer] = {"Statement": _statement_set}
_STATEMENT_ELEMENTS: dict[str, Normalizer] = {
    "Action": _action_set,
    "NotAction": _action_set,
    "Resource": _string_set,
    "NotResource": _string_set,
    "Principal": _principal_set,
    "NotPrincipal": _principal_set,
    "Condition": _condition_set,
}


def _canonical_mapping(mapping: dict[str, Any], elements: dict[str, Normalizer]) -> frozenset[tuple[str, Canonical]]:
    """An object as a set of (element, canonical value), each element normalized by its own rule.

    Element names are case-sensitive in the grammar and `Sid`/`Id` are significant: renaming a statement is a
    change the author asked for.
    """
    return frozenset((key, elements.get(key, _freeze)(value)) for key, value in mapping.items())


def _sorted_lists(value: Any) -> Any:
    """A copy with every list sorted, so a document's text does not depend on the order it was written in."""
    if isinstance(value, dict):
        return {key: _sorted_lists(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted(map(_sorted_lists, value), key=_display_key)
    return value


def _display_key(item: Any) -> tuple[str, str]:
    """Statements sort by Sid first, so an edited statement keeps its place in the diff."""
    sid = item.get("Sid", "") if isinstance(item, dict) else ""
    return _scalar_text(sid), json.dumps(item, sort_keys=True)
