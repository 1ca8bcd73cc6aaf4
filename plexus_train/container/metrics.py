"""Classification metrics, macro-averaged over classes so a rare class counts as much as a common one."""

from __future__ import annotations

from collections.abc import Sequence


def classification_metrics(truth: Sequence[int], predicted: Sequence[int], classes: int) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1.

    A class never predicted has precision 0 (not undefined), so a model that ignores a class is penalised.
    Example: `classification_metrics([0, 1], [0, 0], 2)["accuracy"] == 0.5`
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    precision = recall = f1 = 0.0
    for label in range(classes):
        true_positive = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        predicted_here = sum(1 for p in predicted if p == label)
        actual_here = sum(1 for t in truth if t == label)
        p = true_positive / predicted_here if predicted_here else 0.0
        r = true_positive / actual_here if actual_here else 0.0
        precision += p
        recall += r
        f1 += 2 * p * r / (p + r) if p + r else 0.0
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return {
        "accuracy": correct / len(truth) if truth else 0.0,
        "precision": precision / classes,
        "recall": recall / classes,
        "f1": f1 / classes,
    }
