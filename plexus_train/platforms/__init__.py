"""Where training runs. Every platform has one method, `train(score, dataset) -> TrainingResult`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingResult:
    """+ location: where the model is (a local directory or an s3:// URI)
    + f1: the best epoch's validation macro-F1, when known (a SageMaker job reports it as a metric)
    """

    location: str
    f1: float | None = None
