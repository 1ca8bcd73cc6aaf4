"""What a person watches: a rich progress bar over epochs and batches, per-epoch metric lines, and status
lines while SageMaker works. Library code reports through these; only they print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plexus_train.classifiers.trainer import EpochResult


def epoch_line(result: EpochResult) -> str:
    """One line per epoch, the same on a terminal and in CloudWatch."""
    return (
        f"epoch {result.epoch}: train loss {result.train_loss:.4f}, validation loss {result.validation_loss:.4f}, "
        f"accuracy {result.accuracy:.3f}, precision {result.precision:.3f}, recall {result.recall:.3f}, "
        f"F1 {result.f1:.3f}, lr {result.learning_rate:.2e}, {result.train_examples / result.train_seconds:.0f} ex/s"
    )


class RichReporter:
    """Training progress on the terminal (a Reporter for `train_classifier`)."""

    def __init__(self, console: Any):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.epochs = self.batches = None

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        self.progress.start()
        self.epochs = self.progress.add_task("epochs", total=epochs, loss="")
        self.batches = self.progress.add_task("batches", total=batches_per_epoch, loss="")

    def batch(self, loss: float) -> None:
        self.progress.update(self.batches, advance=1, loss=f"loss {loss:.4f}")

    def epoch(self, result: EpochResult) -> None:
        self.progress.console.print(epoch_line(result))
        self.progress.update(self.epochs, advance=1)
        self.progress.reset(self.batches)

    def finish(self, message: str) -> None:
        self.progress.stop()
        self.console.print(message)


class StatusReporter:
    """Status transitions of a SageMaker job or endpoint, printed once each, plus log lines."""

    def __init__(self, console: Any):
        self.console = console
        self.last: str | None = None

    def status(self, text: str) -> None:
        if text != self.last:
            self.console.print(f"  {text}")
            self.last = text

    def log(self, line: str) -> None:
        from rich.markup import escape

        self.console.print(f"  [dim]│[/] {escape(line)}")
