"""Safe YAML loading that remembers where every value came from.

Why not `yaml.safe_load`: it forgets line numbers, silently lets a duplicate key win, and expands alias
bombs without limit. Here every value's path maps to its (line, column), duplicate keys are problems,
and size, depth and node-count budgets make hostile input fail fast with bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plexus_infra.errors import ManifestError, Problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDocument:
    """A loaded YAML file: its data plus the line/column of every value and mapping key (1-based)."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """The closest known position for `path`: the value itself, else its nearest ancestor."""
        table = self.key_marks if key and path in self.key_marks else self.marks
        probe = tuple(path)
        while probe not in table and probe:
            probe = probe[:-1]
        return table.get(probe, (None, None))

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        line, column = self.locate(path, key=key)
        return Problem(self.file, line, column, dotted(path), message)


def dotted(path: Path_) -> str:
    """`("bucket", "lifecycle", "rules", 0, "id")` → `bucket.lifecycle.rules[0].id`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_text(path: str | Path, *, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """Read a small UTF-8 text file, turning every way that can fail into one clear ManifestError line."""
    name = str(path)
    p = Path(path)

    def fail(message: str) -> ManifestError:
        return ManifestError([Problem(name, None, None, "", message)])

    if not p.exists():
        raise fail(f"no such {what}")
    if p.is_dir():
        raise fail(f"is a directory, not a {what}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise fail(f"{what} is {size:,} bytes; the limit is {max_bytes:,}")
        raw = p.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def load_yaml(path: str | Path, *, what: str = "file") -> YamlDocument:
    """Load one YAML document from `path`; raise ManifestError with every problem found."""
    return parse_yaml(read_text(path, what=what), str(path))


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse YAML text (named `file` in messages) into a YamlDocument."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ManifestError([Problem(file, line, column, "", f"invalid YAML: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Problem(file, None, None, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise ManifestError([Problem(file, None, None, "", "invalid YAML: nesting is too deep")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise ManifestError([Problem(file, None, None, "", "file is empty")])
    builder = _Builder(file, loader)
    data = builder.build(node, (), 0)
    if builder.problems:
        raise ManifestError(builder.problems)
    return YamlDocument(file, data, builder.marks, builder.key_marks)


class _Builder:
    """Turns a composed node graph into plain data, recording marks and enforcing the budgets."""

    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.nodes = 0
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.key_marks: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def _fail(self, node: yaml.Node, message: str) -> ManifestError:
        mark = node.start_mark
        return ManifestError([Problem(self.file, mark.line + 1, mark.column + 1, "", message)])

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._fail(node, f"more than {MAX_NODES:,} values (an alias bomb?); refusing to expand")
        if depth > MAX_DEPTH:
            raise self._fail(node, f"nested more than {MAX_DEPTH} levels deep")
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail(node, f"invalid value: {exc.problem}") from None

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    value = self.build(source, path, depth + 1)
                    if not isinstance(value, dict):
                        raise self._fail(value_node, "a merge key (<<) needs a mapping")
                    merged = {**value, **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, "mapping keys must be plain scalars")
            key = self.loader.construct_object(key_node)
            mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, str):
                shown = key_node.value
                self.problems.append(
                    Problem(self.file, *mark, dotted((*path, shown)), f"key is read as {type(key).__name__}; quote it")
                )
                continue
            key_path = (*path, key)
            if key in result:
                first = self.key_marks.get(key_path, (None, None))[0]
                self.problems.append(
                    Problem(self.file, *mark, dotted(key_path), f"duplicate key (first defined on line {first})")
                )
                continue
            self.key_marks[key_path] = mark
            result[key] = self.build(value_node, key_path, depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result
