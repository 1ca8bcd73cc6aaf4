"""Hostile YAML fails fast, with bounded memory and one clear line: alias bombs, node floods, deep nesting."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from plexus_infra.core.errors import ManifestError
from plexus_infra.core.yamldoc import MAX_BYTES
from plexus_infra.manifest.validate import load_environment

SECONDS = 2.0
PEAK_BYTES = 50 * 1024 * 1024
HEAD = "version: 1\nenvironment: dev\n"


def billion_laughs(levels: int = 10, fan_out: int = 10) -> str:
    """`fan_out ** levels` strings from a few hundred bytes (10 ** 10 by default)."""
    lines = [f"  l0: &l0 [{', '.join(['lol'] * fan_out)}]"]
    for level in range(1, levels):
        lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * fan_out)}]")
    return HEAD + "tags:\n" + "\n".join(lines) + "\n"


def node_flood() -> str:
    """Half a million tiny values, just under the size limit."""
    items = "1, " * ((MAX_BYTES - 100) // 3)
    return HEAD + f"tags: [{items}1]\n"


def deep_block() -> str:
    return HEAD + "tags:\n" + "".join("  " * depth + "k:\n" for depth in range(1, 600))


def deep_flow() -> str:
    return HEAD + "tags: " + "[" * (MAX_BYTES - 100) + "\n"


def failure(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_environment(path)
    return caught.value


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def peak_memory(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HOSTILE = {
    "billion-laughs": (billion_laughs, "more than 50,000 values (an alias bomb?); refusing to expand"),
    "node-flood": (node_flood, "more than 50,000 values (an alias bomb?); refusing to expand"),
    "deep-block-nesting": (deep_block, "nested more than 64 levels deep"),
    "deep-flow-nesting": (deep_flow, "invalid YAML: "),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_fails_fast_with_bounded_memory_and_one_line(name: str, tmp_path: Path) -> None:
    make, message = HOSTILE[name]
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(make())
    assert manifest.stat().st_size <= MAX_BYTES

    assert timed(lambda: failure(manifest)) < SECONDS
    assert peak_memory(lambda: failure(manifest)) < PEAK_BYTES
    problems = failure(manifest).problems
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{manifest}:")
    assert message in problems[0].message
    assert len(str(problems[0]).splitlines()) == 1


def test_billion_laughs_names_the_line_where_expansion_stopped(tmp_path: Path) -> None:
    manifest = tmp_path / "bomb.yaml"
    manifest.write_text(billion_laughs())
    (problem,) = failure(manifest).problems
    assert (problem.file, problem.line) == (str(manifest), 4)


def test_largest_legal_manifest_still_validates_quickly(tmp_path: Path) -> None:
    """998 rules with two transitions each (about 25,000 values) stays within every budget."""
    manifest = tmp_path / "large.yaml"
    rule = "      - {{id: r{0}, prefix: p{0}/, transitions: [{{days: 30, storage_class: STANDARD_IA}}, {{days: 90, storage_class: GLACIER}}]}}\n"  # noqa: E501
    manifest.write_text(HEAD + "bucket:\n  lifecycle:\n    rules:\n" + "".join(rule.format(i) for i in range(998)))
    seconds = timed(lambda: load_environment(manifest))
    assert len(load_environment(manifest).bucket.lifecycle.rules) == 998
    assert seconds < 5 * SECONDS
