"""The stratified sample of `--number-of-samples`: each class keeps its share of the data, and a seed makes the
same sample every time."""

from __future__ import annotations

import random
from collections.abc import Sequence


def allocation(counts: dict[str, int], size: int) -> dict[str, int]:
    """How many of each class a sample of `size` takes: its proportional share, rounded down, and the rows left
    over go to the largest remainders (ties: the larger class, then the label's order). Hamilton's method, so
    the shares sum to `size` exactly.

    Example: `allocation({"a": 6, "b": 3, "c": 1}, 5) == {"a": 3, "b": 2, "c": 0}`
    """
    total = sum(counts.values())
    if not 0 < size <= total:
        raise ValueError(f"a sample of {size} from {total} rows")
    exact = {label: n * size / total for label, n in counts.items()}
    shares = {label: int(value) for label, value in exact.items()}
    left = size - sum(shares.values())
    order = sorted(counts, key=lambda label: (-(exact[label] - shares[label]), -counts[label], label))
    for label in order[:left]:
        shares[label] += 1
    return shares


def stratified_sample(labels: Sequence[str], size: int, seed: int) -> list[int]:
    """Row indices of a sample of `size`, each class in proportion (`allocation`), drawn with `seed`; in the
    data's own order."""
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    shares = allocation({label: len(rows) for label, rows in by_class.items()}, size)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_class):
        chosen += rng.sample(by_class[label], shares[label])
    return sorted(chosen)
