"""The evaluation as one versioned JSON document: what `--json-only` prints and metrics.json holds.

`format_version` follows the plan JSON's rule: a minor bump adds keys (ignore the ones you do not know), a major
one breaks the shape (refuse a major you do not know). Internal dataclasses are converted here, never dumped.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plexus_train.evaluation.run import Evaluation

FORMAT_VERSION = "1.0"


def to_document(evaluation: Evaluation) -> dict[str, Any]:
    """+ format_version, command: "1.0", "evaluate accuracy"
    + scorecard, score, model (what answered), created (ISO 8601, UTC)
    + data: location, rows (before sampling), examples, sample ({number_of_samples, random_seed} or null),
      split ("validation" for plexus train's own report, else null)
    + accuracy, gwet_ac1, cohen_kappa; macro, weighted: {precision, recall, f1}
    + classes: per class label, known (to the model), support, predicted, correct, precision, recall, f1
    + confusion_matrix: labels, counts (rows the true class, columns the predicted one)
    + unknown_labels: {label: rows}, labels of the data the model does not know (all errors)
    + calibration: expected_calibration_error, bins ({low, high, count, confidence, accuracy})
    + files: the evaluation's directory and its four files (null before they are written)
    """
    result = evaluation.figures
    size_seed = evaluation.sample

    return {
        "format_version": FORMAT_VERSION,
        "command": "evaluate accuracy",
        "scorecard": evaluation.scorecard,
        "score": evaluation.score,
        "model": evaluation.model,
        "created": evaluation.created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": {
            "location": evaluation.dataset.source,
            "rows": evaluation.rows,
            "examples": result.examples,
            "sample": {"number_of_samples": size_seed[0], "random_seed": size_seed[1]} if size_seed else None,
            "split": evaluation.split,
        },
        "examples": result.examples,
        "accuracy": result.accuracy,
        "gwet_ac1": result.ac1,
        "cohen_kappa": result.kappa,
        "macro": asdict(result.macro),
        "weighted": asdict(result.weighted),
        "classes": [
            {
                "label": label,
                "known": label not in result.unknown,
                "support": score.support,
                "predicted": score.predicted,
                "correct": score.correct,
                "precision": score.precision,
                "recall": score.recall,
                "f1": score.f1,
            }
            for label, score in zip(result.classes, result.scores, strict=True)
        ],
        "confusion_matrix": {"labels": result.classes, "counts": result.matrix},
        "unknown_labels": result.unknown,
        "calibration": {
            "expected_calibration_error": result.calibration_error,
            "bins": [asdict(b) for b in result.reliability],
        },
        "files": evaluation.files,
    }
