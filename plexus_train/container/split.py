"""Stratified train/validation split with a fixed seed: every class appears on both sides, every run alike."""

from __future__ import annotations

import random
from collections.abc import Sequence


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, validation): about `fraction` of each class goes to validation, at least one example
    and never all of a class's examples. Needs two examples of every class.

    Example: `stratified_split([0, 0, 1, 1], 0.5, 42)` → one 0 and one 1 on each side.
    """
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    rng = random.Random(seed)
    train: list[int] = []
    validation: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) < 2:
            raise ValueError(f"class {label} has {len(members)} example; a stratified split needs 2")
        rng.shuffle(members)
        held_out = min(max(1, round(len(members) * fraction)), len(members) - 1)
        validation.extend(members[:held_out])
        train.extend(members[held_out:])
    return sorted(train), sorted(validation)
