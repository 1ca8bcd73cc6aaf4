"""Where training runs. Every platform has one method, `train(score, dataset) -> TrainingResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from plexus_train.dataset import Dataset
    from plexus_train.scorecards import Score


@dataclass(frozen=True)
class TrainingResult:
    """+ location: where the model is (a local directory or an s3:// URI)
    + metrics: the best epoch's metrics, when the platform reports them
    """

    location: str
    metrics: dict[str, Any] = field(default_factory=dict)


class Platform(Protocol):
    def train(self, score: Score, dataset: Dataset) -> TrainingResult: ...
