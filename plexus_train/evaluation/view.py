"""What a person reads from `plexus evaluate accuracy`: a progress bar while the model answers (on stderr, so
`--json-only` keeps stdout one JSON document), then the figures, the per-class table, the confusion matrix and
where the report is. Names, labels and paths are data: everything shown goes through `escape`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from plexus_infra.core.console import console, error_console, escape

if TYPE_CHECKING:
    from plexus_train.evaluation.run import Evaluation


class RateColumn(ProgressColumn):
    """Texts per second, as rich measures the task's speed."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.1f} texts/s")


class EvaluationProgress:
    """A transient bar over the texts (`with EvaluationProgress(n) as advance: ... advance(32)`), on a terminal
    only: a pipe or a log gets no bar lines."""

    def __init__(self, texts: int, description: str = "predicting"):
        out = error_console()
        self.progress = Progress(
            TextColumn(escape(description)),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=True,
            disable=not out.is_terminal,
        )
        self.task = self.progress.add_task(description, total=texts)

    def advance(self, texts: int) -> None:
        self.progress.update(self.task, advance=texts)

    def __enter__(self) -> Callable[[int], None]:
        self.progress.start()
        return self.advance

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.progress.stop()


def _f(value: float) -> str:
    return f"{value:.3f}"


def print_evaluation(evaluation: Evaluation) -> None:
    """The figures, per class and overall, the confusion matrix, the unknown labels and the report's path."""
    out = console()
    result = evaluation.figures
    drawn = (
        f", a stratified sample (seed {evaluation.sample[1]}) of {evaluation.rows} rows" if evaluation.sample else ""
    )
    out.print(
        escape(f"{evaluation.scorecard} / {evaluation.score}: {evaluation.model} on {evaluation.dataset.source}{drawn}")
    )
    summary = Table("examples", "accuracy", "Gwet's AC1", "Cohen's kappa", "calibration error", box=None)
    summary.add_row(
        str(result.examples), _f(result.accuracy), _f(result.ac1), _f(result.kappa), _f(result.calibration_error)
    )
    out.print(summary)
    averages = Table("average", "precision", "recall", "F1", title="averages over the classes", box=None)
    for name, figures in (("macro", result.macro), ("weighted", result.weighted)):
        averages.add_row(name, _f(figures.precision), _f(figures.recall), _f(figures.f1))
    out.print(averages)
    classes = Table("class", "support", "precision", "recall", "F1", title="per class")
    for label, score in zip(result.classes, result.scores, strict=True):
        name = escape(label) + (" [yellow](unknown to the model)[/]" if label in result.unknown else "")
        classes.add_row(name, str(score.support), _f(score.precision), _f(score.recall), _f(score.f1))
    out.print(classes)
    confusion = Table("true \\ predicted", *map(escape, result.classes), title="confusion matrix")
    for label, row in zip(result.classes, result.matrix, strict=True):
        confusion.add_row(escape(label), *map(str, row))
    out.print(confusion)
    if result.unknown:
        listed = ", ".join(f"{label!r} ({n} rows)" for label, n in result.unknown.items())
        out.print(f"[yellow]labels the model does not know, counted as errors:[/] {escape(listed)}")
    out.print(f"report: {escape(str(evaluation.report))}")


def print_validation_report(path: Path) -> None:
    """The line `plexus train` ends with: where the report of its validation split is."""
    console().print(f"validation report: {escape(str(path))}")
