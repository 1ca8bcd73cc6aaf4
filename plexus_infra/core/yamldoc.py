"""Safe YAML loading that remembers where every value came from.

Why not `yaml.safe_load`: it forgets line numbers, silently lets a duplicate key win, and expands alias
bombs without limit. Here every value's path maps to its (line, column), duplicate keys are problems,
and size, depth and node-count budgets make hostile input fail fast with bounded memory: nodes are
counted while the file is composed (libyaml's parser when available, the pure-Python one otherwise),
and again while aliases are expanded.
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver, Resolver

from plexus_infra.core.errors import ManifestError, Problem

try:
    from yaml.cyaml import CParser as _EventSource

    BYTE_OFFSETS = True  # libyaml reports reader errors at byte offsets of the UTF-8 text
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _EventSource(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

    BYTE_OFFSETS = False

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

UNPRINTABLE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
MERGE_TAG = "tag:yaml.org,2002:merge"
COLLECTION_TAGS = (BaseResolver.DEFAULT_MAPPING_TAG, BaseResolver.DEFAULT_SEQUENCE_TAG)
UNREADABLE = object()  # a scalar that could not be constructed (the problem is already noted)
YAML_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
    bytes: "binary data",
    datetime.date: "a date",
    datetime.datetime: "a timestamp",
    list: "a list",
    dict: "a mapping",
    str: "a string",
}


def yaml_type_name(value: Any) -> str:
    """How YAML calls the type of a loaded value: `True` → "a boolean"."""
    return YAML_TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class YamlDocument:
    """A loaded YAML file: its data, the line/column of every value and mapping key (1-based), and the
    problems found while loading that did not stop it (duplicate keys, keys that are not strings, bad scalars).
    """

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """The closest known position for `path`: the value itself, else its nearest ancestor."""
        table = self.key_marks if key and path in self.key_marks else self.marks
        probe = tuple(path)
        while probe not in table and probe:
            probe = probe[:-1]
        return table.get(probe, (None, None))

    def problem(self, path: Path_, message: str, *, key: bool = False, field: Path_ | None = None) -> Problem:
        """A Problem located at `path`, named by `field` (default: `path` itself)."""
        line, column = self.locate(path, key=key)
        return Problem(self.file, line, column, dotted(path if field is None else field), printable(message))


def dotted(path: Path_) -> str:
    """`("bucket", "lifecycle", "rules", 0, "id")` → `bucket.lifecycle.rules[0].id`; odd keys → `tags["a b"]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{quoted(part)}]"
    return text


def quoted(text: str) -> str:
    """`text` as one printable line in double quotes (JSON escapes; invisible and line-breaking characters too)."""
    return printable(json.dumps(text, ensure_ascii=False))


def printable(text: str) -> str:
    """Escape characters that could break a one-line message or hide in a terminal (controls, line and
    paragraph separators, format characters such as bidi overrides, lone surrogates) as `\\uXXXX`."""
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    if unicodedata.category(char) not in UNPRINTABLE:
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _fail(file: str, line: int | None, column: int | None, message: str) -> ManifestError:
    return ManifestError([Problem(file, line, column, "", printable(message))])


def read_text(path: str | Path, *, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """Read a small UTF-8 text file, turning every way that can fail into one clear ManifestError line."""
    name = str(path)
    p = Path(path)
    try:
        if not p.exists():
            raise _fail(name, None, None, f"no such {what}")
        if p.is_dir():
            raise _fail(name, None, None, f"is a directory, not a {what}")
        size = p.stat().st_size
        if size > max_bytes:
            raise _fail(name, None, None, f"{what} is {size:,} bytes; the limit is {max_bytes:,}")
        with p.open("rb") as stream:
            raw = stream.read(max_bytes + 1)  # a file that grows (or a FIFO) still cannot exceed the budget
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise _fail(name, None, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) > max_bytes:
        raise _fail(name, None, None, f"{what} is larger than the limit of {max_bytes:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(name, line, column, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def load_yaml(path: str | Path, *, what: str = "file") -> YamlDocument:
    """Load one YAML document from `path`; raise ManifestError with every problem found."""
    return parse_yaml(read_text(path, what=what), str(path))


def parse_yaml(text: str, file: str, *, strict: bool = True) -> YamlDocument:
    """Parse YAML text (named `file` in messages) into a YamlDocument.

    + strict: raise on any problem; with False, problems that did not stop loading (duplicate keys, …)
      are returned in `YamlDocument.problems` so a caller can report them together with its own.
    Example: `parse_yaml("a: 1\\n", "x.yaml").locate(("a",)) == (1, 4)`
    """
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    except yaml.reader.ReaderError as exc:
        line, column = _offset_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character  # libyaml gives an int
        raise _fail(file, line, column, f"invalid YAML: {exc.reason} (U+{code:04X})") from None
    except yaml.YAMLError as exc:
        raise _fail(file, None, None, "invalid YAML: " + " ".join(str(exc).split())) from None
    except RecursionError:
        raise _fail(file, None, None, "invalid YAML: nesting is too deep") from None
    finally:
        loader.dispose()
    if node is None:
        raise _fail(file, None, None, "file is empty")
    builder = _Builder(file, loader)
    data = builder.build(node, (), 0)
    if strict and builder.problems:
        raise ManifestError(builder.problems)
    return YamlDocument(file, data, builder.marks, builder.key_marks, tuple(builder.problems))


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    message = " ".join(" ".join(p.split()) for p in (exc.context, exc.problem) if p) or "invalid YAML"
    if mark and _character_at(text, mark.line, mark.column) == "\t":
        message += " (a tab; YAML indents with spaces)"
    return _fail(file, line, column, f"invalid YAML: {message}")


def _character_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line + 1)
    return lines[line][column : column + 1] if line < len(lines) else ""


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a reader error offset (bytes for libyaml, characters otherwise)."""
    before = text.encode("utf-8")[:offset].decode("utf-8", "ignore") if BYTE_OFFSETS else text[:offset]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


class _Resolver(Resolver):
    """YAML 1.1's resolver, plus YAML 1.2's floats written without a dot: `2e-5` is a number (PyYAML's 1.1
    rules make it a string, so `learning_rate: 2e-5`, as people write it, would be refused)."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


class _Loader(Composer, _EventSource, SafeConstructor, _Resolver):
    """A safe loader whose composer enforces the node and depth budgets as it goes."""

    def __init__(self, text: str, file: str):
        _EventSource.__init__(self, text)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        Composer.__init__(self)
        self.file = file
        self.composed = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.composed += 1
        self.depth += 1
        try:
            if self.composed > MAX_NODES or self.depth > MAX_DEPTH:
                raise _budget_error(self.file, self.peek_event().start_mark, self.depth > MAX_DEPTH)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _budget_error(file: str, mark: Any, too_deep: bool) -> ManifestError:
    message = (
        f"nested more than {MAX_DEPTH} levels deep"
        if too_deep
        else f"more than {MAX_NODES:,} values (an alias bomb?); refusing to expand"
    )
    return _fail(file, mark.line + 1, mark.column + 1, message)


class _Builder:
    """Turns a composed node graph into plain data, recording marks and enforcing the budgets."""

    def __init__(self, file: str, loader: _Loader):
        self.file = file
        self.loader = loader
        self.nodes = 0
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.key_marks: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def _note(self, node: yaml.Node, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.file, *_position(node), dotted(path), printable(message)))

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise _budget_error(self.file, node.start_mark, depth > MAX_DEPTH)
        self.marks[path] = _position(node)
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node, path)
            return None if value is UNREADABLE else value
        if node.tag not in COLLECTION_TAGS:
            self._note(node, path, f"unsupported tag {node.tag}; only plain mappings and lists are allowed")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        """The scalar's value, or UNREADABLE with a problem noted."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._note(node, path, f"invalid value: {' '.join(str(exc.problem).split())[:200]}")
            return UNREADABLE
        except (ValueError, OverflowError) as exc:  # a date like 2024-13-45, an int beyond Python's digit limit
            reason = str(exc).split(":")[0]
            self._note(node, path, f"cannot read {_clip(node.value)} as {node.tag.rsplit(':', 1)[-1]}: {reason}")
            return UNREADABLE
        if isinstance(value, str) and not _encodable(value):
            self._note(node, path, "invalid Unicode (a lone surrogate escape)")
            return UNREADABLE
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        merges = [(key, value) for key, value in node.value if key.tag == MERGE_TAG]
        merged = self._merged(merges, path, depth)
        self.marks[path] = _position(node)  # merged sources were built at this path; the mapping is here
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                self._entry(key_node, value_node, path, depth, result)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merged(self, merges: list[tuple[yaml.Node, yaml.Node]], path: Path_, depth: int) -> dict[Any, Any]:
        """The mappings named by `<<` keys, earlier sources winning (YAML's merge key)."""
        merged: dict[Any, Any] = {}
        for key_node, value_node in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._note(key_node, path, "a merge key (<<) needs a mapping or a list of mappings")
                    continue
                merged = {**self.build(source, path, depth + 1), **merged}
        return merged

    def _entry(self, key_node: yaml.Node, value_node: yaml.Node, path: Path_, depth: int, result: dict) -> None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._note(key_node, path, "mapping keys must be plain scalars")
            return
        key = self._scalar(key_node, (*path, key_node.value))
        if key is UNREADABLE:
            return
        if not isinstance(key, str):
            message = f"key is read as {yaml_type_name(key)}, not a name; quote it"
            self._note(key_node, (*path, key_node.value), message)
            return
        key_path = (*path, key)
        if key in result:
            first = self.key_marks.get(key_path, (None, None))[0]
            self._note(key_node, key_path, f"duplicate key (first defined on line {first})")
            return
        self.key_marks[key_path] = _position(key_node)
        result[key] = self.build(value_node, key_path, depth + 1)


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clip(text: str, limit: int = 40) -> str:
    return quoted(text if len(text) <= limit else text[: limit - 1] + "…")
