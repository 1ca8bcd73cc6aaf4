"""Where training runs. Every platform has one method, `train(score, dataset) -> TrainingResult`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingResult:
    """+ location: where the model is (a local directory or an s3:// URI)
    + f1: the best epoch's validation macro-F1, when known (a SageMaker job reports it as a metric)
    + job: the SageMaker training job's name (its location is "" while it has not been waited for: `--no-wait`)
    """

    location: str
    f1: float | None = None
    job: str | None = None
