"""The figures of an evaluation, from the true labels and the model's predictions: pure functions.

The categories are the union of the model's classes and the labels of the data (a label the model does not know
can never be predicted, so each of its rows is an error). Per-class precision, recall and F1 come from
`container.metrics`, the code training's validation uses. Macro and weighted averages run over the categories
present in the truth or in the predictions (scikit-learn's rule): a model class absent from the data and never
predicted has no figures to average. Gwet's AC1 takes q = every category, model's and data's (Gwet 2008).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plexus_train.container.metrics import ClassScore, class_scores, confusion_matrix

RELIABILITY_BINS = 10


@dataclass(frozen=True)
class Averages:
    """Precision, recall and F1 averaged over classes."""

    precision: float
    recall: float
    f1: float


def categories(model_labels: Sequence[str], truth: Sequence[str]) -> list[str]:
    """The model's classes in its order, then the labels of the data it does not know, sorted.

    Example: `categories(["a", "b"], ["b", "z", "c"]) == ["a", "b", "c", "z"]`
    """
    known = set(model_labels)
    return [*model_labels, *sorted({label for label in truth if label not in known})]


def accuracy(matrix: Sequence[Sequence[int]]) -> float:
    """Share of examples on the diagonal."""
    total = sum(map(sum, matrix))
    return sum(matrix[i][i] for i in range(len(matrix))) / total if total else 0.0


def macro(scores: Sequence[ClassScore]) -> Averages:
    """Unweighted mean over the classes present in the truth or the predictions: a rare class counts as much as
    a common one."""
    present = [score for score in scores if score.support or score.predicted]
    n = len(present) or 1
    return Averages(
        sum(s.precision for s in present) / n, sum(s.recall for s in present) / n, sum(s.f1 for s in present) / n
    )


def weighted(scores: Sequence[ClassScore]) -> Averages:
    """Mean weighted by each class's support (its true examples): the figures of the typical example."""
    total = sum(score.support for score in scores) or 1
    return Averages(
        sum(s.precision * s.support for s in scores) / total,
        sum(s.recall * s.support for s in scores) / total,
        sum(s.f1 * s.support for s in scores) / total,
    )


def gwet_ac1(matrix: Sequence[Sequence[int]]) -> float:
    """Gwet's AC1 for two raters (truth and model) over the q categories of `matrix`: agreement beyond chance,
    which stays stable when one category dominates (where Cohen's kappa collapses).

    pa = observed agreement; pi_k = (share of k among the truth + share of k among the predictions) / 2;
    pe = 1/(q-1) · Σ_k pi_k (1 - pi_k); AC1 = (pa - pe) / (1 - pe). Gwet (2008), "Computing inter-rater
    reliability and its variance in the presence of high agreement", Br J Math Stat Psychol 61:29-48. pe is at
    most 1/q, so the denominator is never 0.

    Example: 18 yes/yes, 1 yes/no, 1 no/yes → pa 0.9, pe 0.095, AC1 0.805/0.905 ≈ 0.8895 (kappa ≈ -0.053)
    """
    q, total = len(matrix), sum(map(sum, matrix))
    if q < 2 or not total:
        raise ValueError("AC1 needs two categories and one example")
    pa = accuracy(matrix)
    pi = [(sum(matrix[k]) + sum(row[k] for row in matrix)) / (2 * total) for k in range(q)]
    pe = sum(p * (1 - p) for p in pi) / (q - 1)
    return (pa - pe) / (1 - pe)


def cohen_kappa(matrix: Sequence[Sequence[int]]) -> float:
    """Cohen's kappa, beside AC1 for comparison: pe = Σ_k (share of k among the truth)(share among the
    predictions). 0 when chance agreement is total (pe = 1: both raters always say one category)."""
    q, total = len(matrix), sum(map(sum, matrix))
    if not total:
        raise ValueError("kappa needs one example")
    pa = accuracy(matrix)
    pe = sum(sum(matrix[k]) * sum(row[k] for row in matrix) for k in range(q)) / total**2
    return (pa - pe) / (1 - pe) if pe < 1 else 0.0


@dataclass(frozen=True)
class ReliabilityBin:
    """Predictions whose confidence falls in [low, high): how many, their mean confidence, how many were right."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = RELIABILITY_BINS
) -> list[ReliabilityBin]:
    """Equal-width confidence bins over [0, 1] (the last one closed): a calibrated model is right as often as it
    is confident in every bin."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, confidence in enumerate(confidences):
        members[min(int(confidence * bins), bins - 1)].append(i)
    result = []
    for b, inside in enumerate(members):
        n = len(inside)
        mean = sum(confidences[i] for i in inside) / n if n else 0.0
        right = sum(1 for i in inside if correct[i]) / n if n else 0.0
        result.append(ReliabilityBin(b / bins, (b + 1) / bins, n, mean, right))
    return result


def calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """Expected calibration error: |accuracy - confidence| of each bin, weighted by its share of predictions."""
    total = sum(b.count for b in bins)
    return sum(b.count * abs(b.accuracy - b.confidence) for b in bins) / total if total else 0.0


@dataclass(frozen=True)
class Figures:
    """Everything an evaluation reports about agreement, computed once.

    + classes: the categories (model's, then unknown labels of the data), the order of `matrix` and `scores`
    + unknown: labels of the data the model does not know, with their row counts (all of them errors)
    """

    examples: int
    classes: list[str]
    matrix: list[list[int]]
    scores: list[ClassScore]
    accuracy: float
    ac1: float
    kappa: float
    macro: Averages
    weighted: Averages
    unknown: dict[str, int]
    reliability: list[ReliabilityBin]
    calibration_error: float


def figures(
    model_labels: Sequence[str], truth: Sequence[str], predicted: Sequence[str], confidences: Sequence[float]
) -> Figures:
    """Every figure of an evaluation. Example: see tests/train/test_evaluate.py's hand-computed cases."""
    classes = categories(model_labels, truth)
    matrix = confusion_matrix(truth, predicted, classes)
    scores = class_scores(matrix)
    known = set(model_labels)
    unknown = {label: scores[i].support for i, label in enumerate(classes) if label not in known}
    bins = reliability(confidences, [t == p for t, p in zip(truth, predicted, strict=True)])
    return Figures(
        examples=len(truth),
        classes=classes,
        matrix=matrix,
        scores=scores,
        accuracy=accuracy(matrix),
        ac1=gwet_ac1(matrix),
        kappa=cohen_kappa(matrix),
        macro=macro(scores),
        weighted=weighted(scores),
        unknown=unknown,
        reliability=bins,
        calibration_error=calibration_error(bins),
    )
