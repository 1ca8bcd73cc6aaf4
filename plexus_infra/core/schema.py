"""JSON Schema checks that speak in located Problems: any YAML document against any schema (draft 2020-12).

Both tools validate their YAML this way (manifests, scorecards, scores, data sources), so every bad input
reads alike: `file:line:column: field: message`, one line per problem, all problems at once.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from plexus_infra.core.errors import ManifestError, Problem
from plexus_infra.core.yamldoc import Path_, YamlDocument, printable, yaml_type_name

MAX_SHOWN_VALUE = 60


def shown(value: Any) -> str:
    """A value as it reads inside a one-line message: JSON, printable, clipped at MAX_SHOWN_VALUE characters."""
    text = printable(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


@functools.cache
def packaged_schema(package: str, name: str) -> dict[str, Any]:
    """A JSON Schema file shipped inside `package` (e.g. `plexus_infra.manifest`, `schema.json`)."""
    return json.loads(resources.files(package).joinpath(name).read_text("utf-8"))


def check(doc: YamlDocument, schema: dict[str, Any]) -> None:
    """Raise ManifestError with every schema problem of `doc`, in file order; return when there is none."""
    problems = sorted(schema_problems(doc, schema), key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise ManifestError(problems)


@functools.cache
def _validator_class() -> Any:
    """Draft 2020-12 as YAML users expect it: `30.0` is not an integer, and a pattern's `$` is the end of the
    text (Python's `re` would also let `$` match before a trailing newline, unlike ECMA 262)."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def is_integer(_checker: Any, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def pattern(_validator: Any, regex: str, instance: Any, _schema: Any) -> Iterator[Any]:
        if isinstance(instance, str) and not _ecma_pattern(regex).search(instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer)
    return validators.extend(Draft202012Validator, validators={"pattern": pattern}, type_checker=checker)


@functools.cache
def _ecma_pattern(regex: str) -> re.Pattern[str]:
    """Compile a schema pattern so that a final `$` means the end of the text, as in ECMA 262."""
    return re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", regex))


def schema_problems(doc: YamlDocument, schema: dict[str, Any]) -> list[Problem]:
    """Every JSON Schema violation in `doc`, each located and worded for a person; reusable for any schema."""
    validator = _validator_class()(schema)
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend(_explain(doc, error))
    return problems


def _type_message(expected: Any, instance: Any) -> str:
    message = f"expected {expected}, got {yaml_type_name(instance)} {shown(instance)}"
    if expected == "string" and isinstance(instance, int | float | datetime.date):
        message += "; quote it to keep it text"
    return message


SIZE_KEYWORDS = frozenset(
    ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "maxProperties", "uniqueItems")
)


def _explain(doc: YamlDocument, error: Any) -> Iterator[Problem]:
    """One error from jsonschema → the Problems a person should read (one per unknown or missing field)."""
    path: Path_ = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        for key in error.instance:
            if key not in allowed:
                yield doc.problem((*path, key), f"unknown field{hint}", key=True)
    elif error.validator == "required" and isinstance(error.instance, dict):
        for key in error.validator_value:
            if key not in error.instance:
                yield doc.problem(path, "required field is missing", field=(*path, key))
    elif "propertyNames" in error.schema_path:  # the error is about a key: locate and name the key
        yield doc.problem((*path, error.instance), f"key {_reason(error)}", key=True)
    else:
        yield doc.problem(path, _reason(error))


def _reason(error: Any) -> str:
    """What is wrong with the value, in one line."""
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        return _type_message(expected, instance)
    if kind == "enum":
        return f"must be one of {', '.join(map(str, expected))}; got {shown(instance)}"
    if kind == "const":
        return f"must be {shown(expected)}; got {shown(instance)}"
    if kind == "anyOf" and expected and all("required" in option for option in expected):
        return "needs " + " or ".join(f"'{option['required'][0]}'" for option in expected)
    if kind == "pattern":
        return f"{shown(instance)} does not match {expected}"
    message = error.message.replace(repr(instance), shown(instance)) if kind in SIZE_KEYWORDS else error.message
    message = " ".join(message.split())
    return message if len(message) < 200 else message[:199] + "…"
