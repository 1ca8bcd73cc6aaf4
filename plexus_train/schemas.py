"""The JSON Schema of scorecard, score and data source YAML, checked like plexus-infra manifests are."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from plexus_infra.errors import ManifestError
from plexus_infra.manifest.loader import YamlDocument
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
    problems = sorted(schema_problems(doc, schema_for(kind)), key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise ManifestError(problems)
