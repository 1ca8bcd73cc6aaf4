"""The JSON Schema of scorecard, score and data source YAML, checked like plexus-infra manifests are."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from importlib import resources
from typing import Any

from plexus_infra.errors import ManifestError, Problem
from plexus_infra.manifest.loader import Path_, YamlDocument
from plexus_infra.manifest.validate import schema_problems


@functools.cache
def _definitions() -> dict[str, Any]:
    return json.loads(resources.files("plexus_train").joinpath("schema.json").read_text("utf-8"))


def schema_for(kind: str) -> dict[str, Any]:
    """A schema whose root is the definition `kind` (scorecard, score, datasource)."""
    schema = _definitions()
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}


def check(doc: YamlDocument, kind: str) -> None:
    """Raise ManifestError with every problem of `doc` as a `kind`, located file:line:column, in file order."""
    found = [*schema_problems(doc, schema_for(kind)), *_not_finite(doc, doc.data, ())]
    problems = sorted(found, key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise ManifestError(problems)


def _not_finite(doc: YamlDocument, value: Any, path: Path_) -> Iterator[Problem]:
    """`.nan` and `.inf` anywhere: JSON Schema's minimum/maximum let NaN through (every comparison is false)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield doc.problem(path, f"expected a finite number, got {value}")
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _not_finite(doc, child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _not_finite(doc, child, (*path, index))
