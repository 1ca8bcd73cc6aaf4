"""What the training loop reports, and the reporter a SageMaker job uses: plain lines on stdout, which SageMaker
ships to CloudWatch. A terminal's rich display lives in `plexus_train.views`; both print the same epoch line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class EpochResult:
    """One epoch: training loss, validation loss and metrics (macro-averaged), learning rate, timings."""

    epoch: int
    train_loss: float
    validation_loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    learning_rate: float
    train_examples: int
    train_seconds: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter(Protocol):
    """Receives progress; must not affect training."""

    def start(self, epochs: int, batches_per_epoch: int) -> None: ...
    def batch(self, loss: float) -> None: ...
    def epoch(self, result: EpochResult) -> None: ...
    def finish(self, message: str) -> None: ...


def epoch_line(result: EpochResult) -> str:
    """One line per epoch, the same on a terminal and in CloudWatch."""
    return (
        f"epoch {result.epoch}: train loss {result.train_loss:.4f}, validation loss {result.validation_loss:.4f}, "
        f"accuracy {result.accuracy:.3f}, precision {result.precision:.3f}, recall {result.recall:.3f}, "
        f"F1 {result.f1:.3f}, lr {result.learning_rate:.2e}, {result.train_examples / result.train_seconds:.0f} ex/s"
    )


class SilentReporter:
    """Reports nothing: for benchmarks and library callers."""

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        pass

    def batch(self, loss: float) -> None:
        pass

    def epoch(self, result: EpochResult) -> None:
        pass

    def finish(self, message: str) -> None:
        pass


class LogReporter(SilentReporter):
    """Plain lines on stdout, which SageMaker ships to CloudWatch: the start, each epoch, the summary."""

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        print(f"training: up to {epochs} epochs of {batches_per_epoch} batches", flush=True)

    def epoch(self, result: EpochResult) -> None:
        print(epoch_line(result), flush=True)

    def finish(self, message: str) -> None:
        print(message, flush=True)
