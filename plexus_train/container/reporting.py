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
    train_f1: float  # macro-F1 of the training batches' predictions, as they were made (dropout on)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter(Protocol):
    """Receives progress; must not affect training."""

    def start(self, epochs: int, batches_per_epoch: int) -> None: ...
    def batch(self, loss: float, learning_rate: float) -> None: ...
    def epoch(self, result: EpochResult) -> None: ...
    def finish(self, message: str) -> None: ...


def epoch_line(result: EpochResult) -> str:
    """One line per epoch, the same on a terminal and in CloudWatch."""
    return (
        f"epoch {result.epoch}: train loss {result.train_loss:.4f}, validation loss {result.validation_loss:.4f}, "
        f"accuracy {result.accuracy:.3f}, precision {result.precision:.3f}, recall {result.recall:.3f}, "
        f"F1 {result.f1:.3f}, lr {result.learning_rate:.2e}, {result.train_examples / result.train_seconds:.0f} ex/s"
    )


def step_line(epoch: int, step: int, steps: int, loss: float, learning_rate: float) -> str:
    """One line per optimizer step (`--verbose`), the same on a terminal and in CloudWatch."""
    return f"epoch {epoch}, step {step}/{steps}: loss {loss:.4f}, lr {learning_rate:.2e}"


class StepCounter:
    """Where training is, for step lines: the epoch and the step within it, from the Reporter calls."""

    def __init__(self) -> None:
        self.epoch, self.step, self.steps = 1, 0, 0

    def start(self, batches_per_epoch: int) -> None:
        self.epoch, self.step, self.steps = 1, 0, batches_per_epoch

    def line(self, loss: float, learning_rate: float) -> str:
        """The next step's line."""
        self.step += 1
        return step_line(self.epoch, self.step, self.steps, loss, learning_rate)

    def next_epoch(self) -> None:
        self.epoch, self.step = self.epoch + 1, 0


class SilentReporter:
    """Reports nothing: for benchmarks and library callers."""

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        pass

    def batch(self, loss: float, learning_rate: float) -> None:
        pass

    def epoch(self, result: EpochResult) -> None:
        pass

    def finish(self, message: str) -> None:
        pass


class LogReporter(SilentReporter):
    """Plain lines on stdout, which SageMaker ships to CloudWatch: the start, each epoch (and with `verbose`
    each step), the summary."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self.steps = StepCounter()

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        self.steps.start(batches_per_epoch)
        print(f"training: up to {epochs} epochs of {batches_per_epoch} batches", flush=True)

    def batch(self, loss: float, learning_rate: float) -> None:
        line = self.steps.line(loss, learning_rate)
        if self.verbose:
            print(line, flush=True)

    def epoch(self, result: EpochResult) -> None:
        self.steps.next_epoch()
        print(epoch_line(result), flush=True)

    def finish(self, message: str) -> None:
        print(message, flush=True)
