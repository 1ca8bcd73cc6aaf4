"""Validation: the JSON Schema first, then the AWS rules a schema cannot express.

Every check returns Problems located at file:line:column and a dotted field path; nothing here talks to
AWS, so a bad manifest never reaches plan or apply.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from plexus_infra.errors import ManifestError, Problem
from plexus_infra.manifest.loader import Path_, YamlDocument, load_yaml
from plexus_infra.manifest.model import (
    ABORT_MULTIPART_RULE_ID,
    NONCURRENT_RULE_ID,
    Environment,
    environment_from_data,
)

MAX_LIFECYCLE_RULES = 1000
MAX_RULE_ID_LENGTH = 255
MAX_SHOWN_VALUE = 60

# S3's waterfall: a transition may only go to a class further down this list.
STORAGE_CLASS_ORDER = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
MIN_DAYS_FOR_CLASS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}

REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SSM_NAME = re.compile(r"^(/[a-zA-Z0-9_.-]+)+$")


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The packaged JSON Schema (draft 2020-12) for manifests."""
    return json.loads(resources.files("plexus_infra.manifest").joinpath("schema.json").read_text("utf-8"))


def schema_problems(doc: YamlDocument, schema: dict[str, Any]) -> list[Problem]:
    """Every JSON Schema violation in `doc`, each located and worded for a person; reusable for any schema."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend(_explain(doc, error))
    return problems


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def _explain(doc: YamlDocument, error: Any) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
                yield doc.problem((*path, key), f"unknown field{hint}", key=True)
    elif kind == "required" and isinstance(error.instance, dict):
        for key in error.validator_value:
            if key not in error.instance:
                yield doc.problem(path, f"required field '{key}' is missing")
    elif kind == "type":
        yield doc.problem(path, f"expected {error.validator_value}, got {_shown(error.instance)}")
    elif kind == "enum":
        yield doc.problem(
            path, f"must be one of {', '.join(map(str, error.validator_value))}; got {_shown(error.instance)}"
        )
    elif kind == "const":
        yield doc.problem(path, f"must be {_shown(error.validator_value)}; got {_shown(error.instance)}")
    elif kind == "anyOf" and error.schema.get("anyOf") and all("required" in s for s in error.schema["anyOf"]):
        options = " or ".join(f"'{s['required'][0]}'" for s in error.schema["anyOf"])
        yield doc.problem(path, f"needs {options}")
    elif kind == "pattern":
        yield doc.problem(path, f"{_shown(error.instance)} does not match {error.validator_value}")
    elif kind == "propertyNames":
        yield doc.problem(path, f"key {_shown(error.instance)} is not allowed here ({error.message})")
    elif kind in (
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "maxProperties",
        "uniqueItems",
    ):
        yield doc.problem(path, f"{error.message.replace(repr(error.instance), _shown(error.instance))}")
    else:
        yield doc.problem(path, error.message if len(error.message) < 200 else error.message[:199] + "…")


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
    """S3's bucket naming rules (general purpose buckets)."""
    errors = []
    if not 3 <= len(name) <= 63:
        errors.append(f"must be 3 to 63 characters long (is {len(name)})")
    if not BUCKET_NAME.match(name):
        errors.append(
            "may only hold lowercase letters, digits, dots and hyphens, and must begin and end with a letter or digit"
        )
    if ".." in name:
        errors.append("must not contain two adjacent dots")
    try:
        ipaddress.IPv4Address(name)
        errors.append("must not be formatted as an IP address")
    except ValueError:
        pass
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            errors.append(f"must not start with '{prefix}'")
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", ".mrap"):
        if name.endswith(suffix):
            errors.append(f"must not end with '{suffix}'")
    return errors


def _bucket_name(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    explicit = _get(data, "bucket", "name")
    env = _get(data, "environment")
    if isinstance(explicit, str):
        for message in bucket_name_errors(explicit):
            yield ("bucket", "name"), f"bucket name {_shown(explicit)} {message}"
    elif isinstance(env, str):
        derived = f"plexus-{env}-training"
        for message in bucket_name_errors(derived):
            yield ("environment",), f"derived bucket name {_shown(derived)} {message}"


def _region_and_account(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    region = _get(data, "region")
    if isinstance(region, str) and not REGION.match(region):
        yield ("region",), f"{_shown(region)} is not an AWS region name (like us-east-1)"
    account = _get(data, "account_id")
    if isinstance(account, str) and not ACCOUNT_ID.match(account):
        yield ("account_id",), f"{_shown(account)} is not a 12-digit AWS account id (quote it in YAML)"


def _role_name(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    explicit = _get(data, "role", "name")
    env = _get(data, "environment")
    name, path = (explicit, ("role", "name")) if isinstance(explicit, str) else (None, ("environment",))
    if name is None and isinstance(env, str):
        name = f"plexus-{env}-sagemaker-training"
    if isinstance(name, str) and not ROLE_NAME.match(name):
        yield path, f"IAM role name {_shown(name)} must be 1 to 64 characters of letters, digits and +=,.@_-"


def _parameter_prefix(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    prefix = _get(data, "outputs", "parameter_prefix")
    if not isinstance(prefix, str):
        return
    path = ("outputs", "parameter_prefix")
    longest = prefix.rstrip("/") + "/sagemaker-training-role-arn"
    if not SSM_NAME.match(longest):
        yield path, f"{_shown(prefix)} is not a valid SSM parameter path (start with /; letters, digits, _ . - /)"
    elif re.match(r"^/?(aws|ssm)", longest, re.IGNORECASE):
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
            if len(rule_id) > MAX_RULE_ID_LENGTH:
                yield (*here, "id"), f"rule id is {len(rule_id)} characters; S3 allows {MAX_RULE_ID_LENGTH}"
            if rule_id in (ABORT_MULTIPART_RULE_ID, NONCURRENT_RULE_ID):
                yield (*here, "id"), f"'{rule_id}' is reserved for the housekeeping rule"
            if rule_id in seen:
                yield (*here, "id"), f"duplicate rule id {_shown(rule_id)} (also rules[{seen[rule_id]}])"
            seen.setdefault(rule_id, index)
        yield from _transitions(rule, here)


def _transitions(rule: dict[str, Any], here: Path_) -> Iterator[tuple[Path_, str]]:
    transitions = rule.get("transitions")
    valid = [
        (i, t)
        for i, t in enumerate(transitions if isinstance(transitions, list) else [])
        if isinstance(t, dict) and isinstance(t.get("days"), int) and t.get("storage_class") in STORAGE_CLASS_ORDER
    ]
    previous: tuple[int, dict[str, Any]] | None = None
    for index, transition in valid:
        path: Path_ = (*here, "transitions", index)
        minimum = MIN_DAYS_FOR_CLASS.get(transition["storage_class"], 0)
        if transition["days"] < minimum:
            yield (*path, "days"), f"{transition['storage_class']} transitions need at least {minimum} days"
        if previous is not None:
            _, before = previous
            if transition["days"] <= before["days"]:
                yield (*path, "days"), f"must be later than the previous transition ({before['days']} days)"
            order = STORAGE_CLASS_ORDER.index
            if order(transition["storage_class"]) <= order(before["storage_class"]):
                yield (
                    (*path, "storage_class"),
                    (f"{transition['storage_class']} is not colder than {before['storage_class']}"),
                )
        previous = (index, transition)
    expiration = rule.get("expiration_days")
    if previous is not None and isinstance(expiration, int) and expiration <= previous[1]["days"]:
        yield (*here, "expiration_days"), f"must be later than the last transition ({previous[1]['days']} days)"


AWS_RULES: tuple[Rule, ...] = (
    _bucket_name,
    _region_and_account,
    _role_name,
    _parameter_prefix,
    _encryption,
    _lifecycle,
)


def aws_problems(doc: YamlDocument) -> list[Problem]:
    """Every AWS rule violation in the manifest data."""
    if not isinstance(doc.data, dict):
        return []
    return [doc.problem(path, message) for rule in AWS_RULES for path, message in rule(doc.data)]


def manifest_problems(doc: YamlDocument) -> list[Problem]:
    """All problems of one loaded manifest: schema and AWS rules, in file order."""
    if not isinstance(doc.data, dict):
        return [doc.problem((), f"a manifest is a mapping of fields; got {type(doc.data).__name__}")]
    problems = schema_problems(doc, manifest_schema()) + aws_problems(doc)
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0))


def load_environment(path: str | Path) -> Environment:
    """Load, validate and model a manifest; raise ManifestError listing every problem.

    Example: `load_environment("environments/staging.yaml").bucket.name == "plexus-staging-training"`
    """
    doc = load_yaml(path, what="manifest")
    problems = manifest_problems(doc)
    if problems:
        raise ManifestError(problems)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return environment_from_data(doc.data, source=str(path), digest=digest)
