"""The JSON Schema of scorecard, score and data source YAML, checked like plexus-infra manifests are."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from plexus_infra.core.errors import ManifestError, Problem
from plexus_infra.core.schema import packaged_schema, schema_problems
from plexus_infra.core.yamldoc import Path_, YamlDocument


def schema_for(kind: str) -> dict[str, Any]:
    """A schema whose root is the definition `kind` (scorecard, score, datasource)."""
    schema = packaged_schema("plexus_train", "schema.json")
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}


MIN_FRAMEWORK = (2, 6)  # the packaged code pins transformers 5, which needs torch >= 2.6


def check(doc: YamlDocument, kind: str) -> None:
    """Raise ManifestError with every problem of `doc` as a `kind`, located file:line:column, in file order."""
    found = [*schema_problems(doc, schema_for(kind)), *_value_problems(doc)]
    problems = sorted(found, key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise ManifestError(problems)


def _value_problems(doc: YamlDocument) -> Iterator[Problem]:
    """What JSON Schema cannot say: `.nan`/`.inf` pass its minimum/maximum (every comparison is false), and a
    `framework_version` whose PyTorch images cannot run the packaged code would only fail in the container."""
    for path, value in _nodes(doc.data, ()):
        if isinstance(value, float) and not math.isfinite(value):
            yield doc.problem(path, f"expected a finite number, got {value}")
        elif path and path[-1] == "framework_version" and isinstance(value, str):
            version = _version(value)
            if version is not None and version < MIN_FRAMEWORK:
                yield doc.problem(
                    path, f"PyTorch {value} images cannot run the packaged code (transformers 5 needs torch >= 2.6)"
                )


def _nodes(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _version(text: str) -> tuple[int, int] | None:
    major, _, rest = text.partition(".")
    minor = rest.partition(".")[0]
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None
