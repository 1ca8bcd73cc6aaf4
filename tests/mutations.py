"""Shared by the property tests that break valid documents (manifests, score YAML): walk a document,
replace one value, and draw a value of another type."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

Path_ = tuple[str | int, ...]


def nodes(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) in the data, the root first."""
    yield path, data
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, child in children:
        yield from nodes(child, (*path, key))


def replaced(data: Any, path: Path_, value: Any) -> Any:
    """A deep copy of `data` with the value at `path` replaced; `data` itself is untouched."""
    copied = copy.deepcopy(data)
    parent = copied
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return copied


def other_type(value: Any, *, float_takes_int: bool = False) -> st.SearchStrategy[Any]:
    """A value of another YAML/JSON type than `value`'s (ints get non-integral floats, never 1.0 for 1).
    With `float_takes_int`, a float field's integers count as the same type."""
    candidates = {
        str: st.text(max_size=20),
        int: st.integers(-(10**6), 10**6),
        float: st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        bool: st.booleans(),
        type(None): st.none(),
        list: st.lists(st.integers(), max_size=3),
        dict: st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=2),
    }
    kind = type(value)
    if kind is float and float_takes_int:
        candidates.pop(int)
    return st.one_of(*(strategy for other, strategy in candidates.items() if other is not kind))


def deeply_nested(depth: int) -> Any:
    """`depth` lists inside each other."""
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value
