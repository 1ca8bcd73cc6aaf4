"""Validation: the JSON Schema first, then the AWS rules a schema cannot express.

Every check returns Problems located at file:line:column and a dotted field path; nothing here talks to
AWS, so a bad manifest never reaches plan or apply.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from plexus_infra import environments
from plexus_infra.core.errors import ManifestError, Problem
from plexus_infra.core.schema import packaged_schema, schema_problems, shown
from plexus_infra.core.yamldoc import Path_, YamlDocument, parse_yaml, read_text, yaml_type_name
from plexus_infra.manifest.model import (
    ABORT_MULTIPART_RULE_ID,
    NONCURRENT_RULE_ID,
    Environment,
    environment_from_data,
)

MAX_LIFECYCLE_RULES = 1000
MAX_RULE_ID_LENGTH = 255

# S3's waterfall: a transition may only go to a class further down this list.
STORAGE_CLASS_ORDER = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
MIN_DAYS_FOR_CLASS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
# Objects must stay this long in an IA class before a lifecycle rule may move them on.
MIN_DAYS_IN_CLASS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
UNSUPPORTED_TRANSITIONS = {("ONEZONE_IA", "GLACIER_IR")}

# Full matches of ASCII text: `$` and `\d` would also accept a trailing newline and non-ASCII digits.
REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}", re.ASCII)
ACCOUNT_ID = re.compile(r"[0-9]{12}")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
BUCKET_CHARS = re.compile(r"[a-z0-9.-]*")
BUCKET_ENDS = re.compile(r"[a-z0-9](.*[a-z0-9])?", re.DOTALL)
SSM_NAME = re.compile(r"(/[a-zA-Z0-9_.-]+)+")
TAG_PUNCTUATION = "_.:/=+-@"
RESERVED_TAG_PREFIXES = ("aws:", "plexus:")
# IAM's description pattern: tab, newline, carriage return and printable Latin-1.
ROLE_DESCRIPTION = re.compile(r"[\t\n\r\u0020-\u007E\u00A1-\u00FF]*")


def manifest_schema() -> dict[str, Any]:
    """The packaged JSON Schema (draft 2020-12) for manifests."""
    return packaged_schema("plexus_infra.manifest", "schema.json")


# --- AWS rules ------------------------------------------------------------------------------------------

Rule = Callable[[dict[str, Any]], Iterator[tuple[Path_, str]]]


def _get(data: Any, *keys: str | int, default: Any = None) -> Any:
    """Defensive lookup: the rules also run on manifests that failed the schema."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or key >= len(data):
                return default
        elif not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def bucket_name_errors(name: str) -> list[str]:
    """S3's bucket naming rules (general purpose buckets); one message per rule broken.

    Example: `bucket_name_errors("my..bucket") == ["must not contain two adjacent dots"]`
    """
    errors = []
    if not 3 <= len(name) <= 63:
        errors.append(f"must be 3 to 63 characters long (is {len(name)})")
    if not BUCKET_CHARS.fullmatch(name):
        errors.append("may only hold lowercase letters, digits, dots and hyphens")
    elif name and not BUCKET_ENDS.fullmatch(name):
        errors.append("must begin and end with a letter or digit")
    if ".." in name:
        errors.append("must not contain two adjacent dots")
    if _is_ipv4(name):
        errors.append("must not be formatted as an IP address")
    errors += [
        f"must not start with '{prefix}'" for prefix in ("xn--", "sthree-", "amzn-s3-demo-") if name.startswith(prefix)
    ]
    errors += [
        f"must not end with '{suffix}'"
        for suffix in ("-s3alias", "--ol-s3", "--x-s3", ".mrap")
        if name.endswith(suffix)
    ]
    return errors


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _bucket_name(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    explicit = _get(data, "bucket", "name")
    env = _get(data, "environment")
    if isinstance(explicit, str):
        for message in bucket_name_errors(explicit):
            yield ("bucket", "name"), f"bucket name {shown(explicit)} {message}"
    elif isinstance(env, str):
        derived = environments.default_bucket_name(env)
        for message in bucket_name_errors(derived):
            yield ("environment",), f"derived bucket name {shown(derived)} {message}"


def _region_and_account(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    region = _get(data, "region")
    if isinstance(region, str) and not REGION.fullmatch(region):
        yield ("region",), f"{shown(region)} is not an AWS region name (like us-east-1)"
    account = _get(data, "account_id")
    if isinstance(account, str) and not ACCOUNT_ID.fullmatch(account):
        yield ("account_id",), f"{shown(account)} is not a 12-digit AWS account id"
    role = _get(data, "assume_role_arn")
    for field in ("external_id", "session_name"):
        if _get(data, field) is not None and role is None:
            yield (field,), "only means something with assume_role_arn"
    if isinstance(role, str) and isinstance(account, str) and f":iam::{account}:" not in role:
        yield ("assume_role_arn",), f"names a role in another account than account_id {shown(account)}"


def _role(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    explicit = _get(data, "role", "name")
    env = _get(data, "environment")
    name, path = (explicit, ("role", "name")) if isinstance(explicit, str) else (None, ("environment",))
    if name is None and isinstance(env, str):
        name = environments.default_role_name(env)
    if isinstance(name, str) and not ROLE_NAME.fullmatch(name):
        yield path, f"IAM role name {shown(name)} must be 1 to 64 characters of letters, digits and +=,.@_-"
    description = _get(data, "role", "description")
    if isinstance(description, str) and not ROLE_DESCRIPTION.fullmatch(description):
        yield ("role", "description"), "IAM role descriptions may only hold printable Latin-1 characters"


def _tag_text_ok(text: str) -> bool:
    """AWS's tag pattern `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`: letters, separators, numbers and `_.:/=+-@`."""
    return all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def _tags(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    tags = _get(data, "tags")
    if not isinstance(tags, dict):
        return
    allowed = f"letters, digits, spaces and {' '.join(TAG_PUNCTUATION)}"
    for key, value in tags.items():
        if key.lower().startswith(RESERVED_TAG_PREFIXES):
            yield ("tags", key), "tag keys must not start with aws: (reserved by AWS) or plexus: (the tool's own tags)"
        elif not _tag_text_ok(key):
            yield ("tags", key), f"tag keys may only hold {allowed}"
        elif isinstance(value, str) and not _tag_text_ok(value):
            yield ("tags", key), f"tag values may only hold {allowed}"


def _parameter_prefix(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    prefix = _get(data, "outputs", "parameter_prefix")
    if not isinstance(prefix, str):
        return
    path = ("outputs", "parameter_prefix")
    longest = prefix.rstrip("/") + "/sagemaker-training-role-arn"
    if not SSM_NAME.fullmatch(longest):
        yield path, f"{shown(prefix)} is not a valid SSM parameter path (start with /; letters, digits, _ . - /)"
    elif re.match(r"/?(aws|ssm)", longest, re.IGNORECASE):
        yield path, "SSM parameter names must not begin with 'aws' or 'ssm'"
    elif len(longest) > 1011 or longest.count("/") > 15:
        yield path, "SSM parameter names are limited to 1011 characters and 15 levels"


def _encryption(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    algorithm = _get(data, "bucket", "encryption", "algorithm", default="SSE-S3")
    if _get(data, "bucket", "encryption", "kms_key_id") is not None and algorithm != "SSE-KMS":
        yield ("bucket", "encryption", "kms_key_id"), "kms_key_id needs algorithm: SSE-KMS"


def _lifecycle(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    rules = _get(data, "bucket", "lifecycle", "rules", default=[])
    if not isinstance(rules, list):
        return
    base: Path_ = ("bucket", "lifecycle", "rules")
    if len(rules) + 2 > MAX_LIFECYCLE_RULES:
        yield base, f"S3 allows at most {MAX_LIFECYCLE_RULES} lifecycle rules (2 are the housekeeping rules)"
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        here: Path_ = (*base, index)
        rule_id = rule.get("id")
        if isinstance(rule_id, str):
            yield from (((*here, "id"), message) for message in _rule_id_errors(rule_id, seen))
            seen.setdefault(rule_id, index)
        yield from _transitions(rule, here)


def _rule_id_errors(rule_id: str, seen: dict[str, int]) -> Iterator[str]:
    if len(rule_id) > MAX_RULE_ID_LENGTH:
        yield f"rule id is {len(rule_id)} characters; S3 allows {MAX_RULE_ID_LENGTH}"
    if rule_id in (ABORT_MULTIPART_RULE_ID, NONCURRENT_RULE_ID):
        yield f"'{rule_id}' is reserved for the housekeeping rule"
    if rule_id in seen:
        yield f"duplicate rule id {shown(rule_id)} (also rules[{seen[rule_id]}])"


def _is_transition(value: Any) -> bool:
    days = value.get("days") if isinstance(value, dict) else None
    return isinstance(days, int) and not isinstance(days, bool) and value.get("storage_class") in STORAGE_CLASS_ORDER


def _transitions(rule: dict[str, Any], here: Path_) -> Iterator[tuple[Path_, str]]:
    """S3's transition rules, checked on the transitions the schema accepted (each against the one before)."""
    transitions = rule.get("transitions")
    valid = [(i, t) for i, t in enumerate(transitions if isinstance(transitions, list) else []) if _is_transition(t)]
    previous: dict[str, Any] | None = None
    for index, transition in valid:
        path: Path_ = (*here, "transitions", index)
        minimum = MIN_DAYS_FOR_CLASS.get(transition["storage_class"], 0)
        if transition["days"] < minimum:
            yield (*path, "days"), f"{transition['storage_class']} transitions need at least {minimum} days"
        if previous is not None:
            yield from _transition_step(previous, transition, path)
        previous = transition
    expiration = rule.get("expiration_days")
    if previous is not None and isinstance(expiration, int) and expiration <= previous["days"]:
        yield (*here, "expiration_days"), f"must be later than the last transition ({previous['days']} days)"


def _transition_step(before: dict[str, Any], after: dict[str, Any], path: Path_) -> Iterator[tuple[Path_, str]]:
    """One transition following another: later, colder, a supported move, and after the minimum stay."""
    earlier, warmer = before["storage_class"], after["storage_class"]
    stay = MIN_DAYS_IN_CLASS.get(earlier, 0)
    if after["days"] <= before["days"]:
        yield (*path, "days"), f"must be later than the previous transition ({before['days']} days)"
    elif after["days"] - before["days"] < stay:
        yield (*path, "days"), f"objects must stay {stay} days in {earlier} (until day {before['days'] + stay})"
    order = STORAGE_CLASS_ORDER.index
    if order(warmer) <= order(earlier):
        yield (*path, "storage_class"), f"{warmer} is not colder than {earlier}"
    elif (earlier, warmer) in UNSUPPORTED_TRANSITIONS:
        yield (*path, "storage_class"), f"S3 cannot move objects from {earlier} to {warmer}"


@functools.cache
def _statement_schema(kind: str) -> Any:
    """The schema of one statement: `statement` (a bucket policy's) or `identity_statement` (a role's)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": manifest_schema()["$defs"]})


def _grammar_problem(statement: Any) -> str | None:
    """Why a schema-valid statement does not read as IAM grammar, as plan will read it; None when it does."""
    from plexus_infra.policy import normalize_policy

    try:
        normalize_policy({"Version": "2012-10-17", "Statement": [statement]})
    except ValueError as exc:
        return str(exc).replace("policy statement 0: ", "")
    return None


def statement_problems(statement: Any, kind: str = "statement") -> list[str]:
    """Everything that keeps `statement` out of `bucket.policy_statements` (kind `statement`) or a role's
    `inline_policies` (kind `identity_statement`), for statements read from AWS."""
    schema = _statement_schema(kind)
    schema_errors = [" ".join(error.message.split())[:160] for error in schema.iter_errors(statement)]
    return schema_errors or [problem for problem in [_grammar_problem(statement)] if problem]


def _declared_statements(data: dict[str, Any]) -> Iterator[tuple[Path_, str, Any]]:
    """Every statement the manifest declares, with its place and its schema kind."""
    statements = _get(data, "bucket", "policy_statements", default=[])
    for index, statement in enumerate(statements if isinstance(statements, list) else []):
        yield ("bucket", "policy_statements", index), "statement", statement
    policies = _get(data, "role", "inline_policies", default={})
    for name, listed in (policies if isinstance(policies, dict) else {}).items():
        for index, statement in enumerate(listed if isinstance(listed, list) else []):
            yield ("role", "inline_policies", name, index), "identity_statement", statement


def _policy_statements(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Each declared policy statement must read as IAM grammar, as plan will read it."""
    for path, kind, statement in _declared_statements(data):
        if not _statement_schema(kind).is_valid(statement):
            continue  # the schema has said what is wrong with it
        problem = _grammar_problem(statement)
        if problem:
            yield path, problem


def _inline_policy_names(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """The tool's own inline policy is not the manifest's to declare."""
    own = environments.INLINE_POLICY_NAME
    policies = _get(data, "role", "inline_policies", default={})
    if isinstance(policies, dict) and own in policies:
        yield (
            ("role", "inline_policies", own),
            (f"{own} is plexus-infra's own inline policy (the bucket, logs, ECR); give yours another name"),
        )


AWS_RULES: tuple[Rule, ...] = (
    _bucket_name,
    _region_and_account,
    _role,
    _tags,
    _parameter_prefix,
    _encryption,
    _lifecycle,
    _policy_statements,
    _inline_policy_names,
)


def aws_problems(doc: YamlDocument) -> list[Problem]:
    """Every AWS rule violation in the manifest data."""
    if not isinstance(doc.data, dict):
        return []
    return [doc.problem(path, message) for rule in AWS_RULES for path, message in rule(doc.data)]


def first_layer_wins(*layers: list[Problem]) -> list[Problem]:
    """Merge problem lists, dropping a later layer's problem at a place (field, line, column) an earlier layer
    already reported: an unreadable value is not also "expected string, got null", and a name the schema
    rejected needs no AWS rule's word after it."""
    merged: list[Problem] = []
    for layer in layers:
        reported = {(p.field, p.line, p.column) for p in merged}
        merged += [p for p in layer if (p.field, p.line, p.column) not in reported]
    return merged


def manifest_problems(doc: YamlDocument) -> list[Problem]:
    """All problems of one loaded manifest: the loader's, the schema's and the AWS rules', in file order."""
    if doc.data is None:
        return [*doc.problems, doc.problem((), "the manifest is empty; expected a mapping of fields")]
    if not isinstance(doc.data, dict):
        return [*doc.problems, doc.problem((), f"a manifest is a mapping of fields; got {yaml_type_name(doc.data)}")]
    problems = first_layer_wins(list(doc.problems), schema_problems(doc, manifest_schema()), aws_problems(doc))
    return sorted(dict.fromkeys(problems), key=lambda p: (p.line or 0, p.column or 0))


def load_environment(path: str | Path) -> Environment:
    """Load, validate and model a manifest; raise ManifestError listing every problem.

    Example: `load_environment("environments/staging.yaml").bucket.name == "plexus-staging-training"`
    """
    return environment_from_text(read_text(path, what="manifest"), str(path))


def environment_from_text(text: str, source: str) -> Environment:
    """Validate and model a manifest's text (named `source` in messages); raise ManifestError listing every problem."""
    path = source
    doc = parse_yaml(text, str(path), strict=False)
    problems = manifest_problems(doc)
    if problems:
        raise ManifestError(problems)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return environment_from_data(doc.data, source=str(path), digest=digest)


def clashes(envs: list[Environment]) -> list[Problem]:
    """Two manifests naming one environment, bucket, role or output prefix (pure): one problem each, naming both."""
    problems = []
    for what, key in (
        ("environment", lambda e: e.name),
        ("bucket", lambda e: e.bucket.name),
        ("role", lambda e: e.role.name),
        ("outputs.parameter_prefix", lambda e: e.parameter_prefix),
    ):
        first: dict[str, Environment] = {}
        for env in envs:
            value = key(env)
            if value in first:
                other = first[value].source
                message = f"names the same {what} {value!r} as {other}: two environments would write one"
                problems.append(Problem(env.source, None, None, "", message))
            else:
                first.setdefault(value, env)
    return problems
