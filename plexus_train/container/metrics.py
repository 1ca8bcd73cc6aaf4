"""Classification metrics, macro-averaged over classes so a rare class counts as much as a common one.

Training's validation (`classification_metrics`) and `plexus evaluate accuracy` count from the same confusion
matrix and per-class scores, so the two agree on every figure they share."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass


def confusion_matrix(
    truth: Sequence[Hashable], predicted: Sequence[Hashable], classes: Sequence[Hashable]
) -> list[list[int]]:
    """Counts: row = the true class, column = the predicted one, both in the order of `classes`.

    Example: `confusion_matrix(["a", "b"], ["a", "a"], ["a", "b"]) == [[1, 0], [1, 0]]`
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    at = {label: i for i, label in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for t, p in zip(truth, predicted, strict=True):
        matrix[at[t]][at[p]] += 1
    return matrix


@dataclass(frozen=True)
class ClassScore:
    """One class's figures: `support` true examples, `predicted` predictions of it, `correct` both.

    A class never predicted has precision 0 (not undefined), one never present recall 0, so a model that ignores
    a class is penalised."""

    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def class_scores(matrix: Sequence[Sequence[int]]) -> list[ClassScore]:
    """Each class's support, predictions and correct predictions from a confusion matrix (rows true)."""
    return [
        ClassScore(support=sum(matrix[i]), predicted=sum(row[i] for row in matrix), correct=matrix[i][i])
        for i in range(len(matrix))
    ]


def macro_f1_of(matrix: Sequence[Sequence[int]]) -> float:
    """Macro-F1 over every class of a confusion matrix (rows true).

    Example: `macro_f1_of([[1, 0], [1, 0]]) == (2 / 3 + 0) / 2`
    """
    scores = class_scores(matrix)
    return sum(score.f1 for score in scores) / len(scores) if scores else 0.0


def classification_metrics(truth: Sequence[int], predicted: Sequence[int], classes: int) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 over the `classes` classes 0..classes-1.

    Example: `classification_metrics([0, 1], [0, 0], 2)["accuracy"] == 0.5`
    """
    matrix = confusion_matrix(truth, predicted, range(classes))
    scores = class_scores(matrix)
    correct = sum(score.correct for score in scores)
    return {
        "accuracy": correct / len(truth) if truth else 0.0,
        "precision": sum(score.precision for score in scores) / classes,
        "recall": sum(score.recall for score in scores) / classes,
        "f1": macro_f1_of(matrix),
    }
