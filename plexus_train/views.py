"""Everything a person reads from `plexus`: training progress (a rich bar over epochs and batches, one line per
epoch), status lines while SageMaker works, prediction tables, and provisioning plans and results. The commands
(cli.py) decide what to show; the library reports through `container.reporting.Reporter` and
`waiting.StatusReporter`, implemented here, and never prints.

Names, labels, paths and AWS messages are data, never rich markup: everything shown goes through `escape`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.console import console, escape
from plexus_infra.plan import CREATE, DELETE, REPLACE, SYMBOLS, UPDATE, Change, Plan, summary_line
from plexus_train.container.reporting import EpochResult, StepCounter, epoch_line
from plexus_train.provision import NOUNS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from plexus_train.container.dataset import Dataset
    from plexus_train.model_source import ModelSource
    from plexus_train.provision import Provisioned
    from plexus_train.scorecards import Score

# Terraform's action symbols, with their colours.
PAST_TENSE = {CREATE: "created", UPDATE: "updated", DELETE: "deleted", REPLACE: "replaced"}


# --- training ------------------------------------------------------------------------------------------------


class RichProgress:
    """Training progress on the terminal (a container.reporting.Reporter for `train_classifier`); with `verbose`, a
    line per optimizer step too."""

    def __init__(self, out: Console, verbose: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = out
        self.verbose = verbose
        self.steps = StepCounter()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
        self.epochs: TaskID | None = None
        self.batches: TaskID | None = None

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        self.steps.start(batches_per_epoch)
        self.progress.start()
        self.epochs = self.progress.add_task("epochs", total=epochs, loss="")
        self.batches = self.progress.add_task("batches", total=batches_per_epoch, loss="")

    def batch(self, loss: float, learning_rate: float) -> None:
        line = self.steps.line(loss, learning_rate)
        if self.verbose:
            self.progress.console.print(line)
        self.progress.update(self.batches, advance=1, loss=f"loss {loss:.4f}")

    def epoch(self, result: EpochResult) -> None:
        self.steps.next_epoch()
        self.progress.console.print(epoch_line(result))
        self.progress.update(self.epochs, advance=1)
        self.progress.reset(self.batches)

    def finish(self, message: str) -> None:
        self.progress.stop()
        self.console.print(message)


class StatusLines:
    """Status transitions of a SageMaker job or endpoint, printed once each, plus log lines (a
    waiting.StatusReporter)."""

    def __init__(self, out: Console):
        self.console = out
        self.last: str | None = None

    def status(self, text: str) -> None:
        if text != self.last:
            self.console.print(f"  {escape(text)}")
            self.last = text

    def log(self, line: str) -> None:
        self.console.print(f"  [dim]│[/] {escape(line)}")


def print_training(score: Score, dataset: Dataset) -> None:
    console().print(
        escape(
            f"{score.scorecard_name} / {score.name}: {len(dataset.texts)} examples from {dataset.source}, "
            f"classes {dataset.class_counts()}, platform {score.training.platform}"
            + (
                " (local mode)"
                if score.training.platform == "sagemaker" and score.training.instance_type == "local"
                else ""
            )
        )
    )


def print_trained(location: str) -> None:
    console().print(f"[green]✓[/] model: {escape(location)}")


def print_job_created(job: str | None) -> None:
    """`--no-wait`: the job's name, and how to pick it up again."""
    console().print(f"training job {escape(str(job))} created; `plexus train --attach {escape(str(job))}` waits for it")


def print_serving(line: str) -> None:
    """What `plexus serve` says while it starts and once it listens."""
    console().print(escape(line))


def print_served() -> None:
    console().print("stopped serving")


def print_forgotten(directory: Path | None) -> None:
    """What `--fresh` removed before training."""
    if directory is not None:
        console().print(f"--fresh: removed {escape(str(directory))}/, the model an earlier run left")


@dataclass(frozen=True)
class TrainingRow:
    """One score's line in the table that ends `plexus train --scorecard X` (every score).

    + status: trained, created (a SageMaker job left running: `--no-wait`), skipped (a class this tool does not
      train) or failed
    + why: for a score not trained, why not
    """

    score: str
    status: str
    examples: int | None = None
    classes: int | None = None
    f1: float | None = None
    model: str = ""
    why: str = ""


STATUS_STYLES = {"trained": "green", "created": "cyan", "skipped": "dim", "failed": "red"}


def print_skipped(note: str) -> None:
    console().print(f"[dim]skipped: {escape(note)}[/]")


def first_line(failure: BaseException) -> str:
    """A failure as it fits a table cell: its first line, and how many more problems it has."""
    lines = str(failure).splitlines() or [type(failure).__name__]
    return lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")


def print_failure(score: str, failure: BaseException) -> None:
    for line in str(failure).splitlines():
        console().print(f"[red]failed:[/] {escape(score)}: {escape(line)}")


def print_training_table(scorecard: str, rows: list[TrainingRow]) -> None:
    """Every score of the scorecard: what happened, its examples and classes, the best macro-F1, where the model
    went (or why there is none)."""
    from rich.table import Table

    table = Table("score", "status", "examples", "classes", "best macro-F1", "model", title=escape(scorecard))
    for row in rows:
        table.add_row(
            escape(row.score),
            f"[{STATUS_STYLES[row.status]}]{row.status}[/]",
            "" if row.examples is None else str(row.examples),
            "" if row.classes is None else str(row.classes),
            "" if row.f1 is None else f"{row.f1:.3f}",
            escape(row.model or row.why),
        )
    console().print(table)


# --- predictions ---------------------------------------------------------------------------------------------


def print_predictions(rows: list[dict[str, Any]], form: str = "table") -> None:
    """Each text with its prediction: a table, or (machine output, plain) JSON or YAML lists of those objects."""
    if form == "json":
        import json

        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if form == "yaml":
        import yaml

        print(yaml.safe_dump(rows, allow_unicode=True, sort_keys=False, width=10_000), end="")
        return
    from rich.table import Table

    table = Table("text", "value", "confidence")
    for row in rows:
        table.add_row(escape(row["text"]), escape(row["value"]), f"{row['confidence']:.3f}")
    console().print(table)


# --- provisioning --------------------------------------------------------------------------------------------


def _noun_and_name(change: Change) -> tuple[str, str]:
    kind, _, name = change.address.partition(".")
    return NOUNS.get(kind, kind), name


def done_line(change: Change) -> str:
    """What a change did, as a sentence: `created model NAME (s3://...)`, `updated endpoint NAME: old → new`,
    `deleted endpoint config NAME`, or `no-op: model NAME already exists (...)`."""
    noun, name = _noun_and_name(change)
    if change.is_noop:
        return f"no-op: {noun} {name} {change.reason}"
    text = f"{PAST_TENSE[tuple(change.actions)]} {noun} {name}"
    before, after = change.before or {}, change.after or {}
    if change.actions == UPDATE:
        text += ": " + ", ".join(f"{before.get(key)} → {after.get(key)}" for key in change.changed)
    elif "ModelDataUrl" in after:
        text += f" ({after['ModelDataUrl']})"
    return text


def print_provisioned(result: Provisioned) -> None:
    """The model served, each change made (`+ ~ -`) and each no-op, then the endpoint's verdict."""
    out = console()
    out.print(f"model: {escape(result.model.origin)}")
    for change in result.plan.changes:
        if change.is_noop:
            out.print(f"  {escape(done_line(change))}")
        else:
            symbol, style = SYMBOLS[tuple(change.actions)]
            out.print(f"[{style}]{symbol}[/] {escape(done_line(change))}")
    verdict = "updated" if result.plan.has_changes else "no changes"
    out.print(f"endpoint {escape(result.endpoint_name)}: InService ({verdict})")


def plan_lines(plan: Plan, source: ModelSource) -> list[tuple[str, str]]:
    """A provisioning plan as (style, text) lines: a header, the model, each change with its symbol and why (a
    no-op too: there are few), the attributes an update changes, and Terraform's summary line."""
    lines = [
        ("bold", f"Plan for {plan.environment} ({plan.manifest}), account {plan.account}, {plan.region}"),
        ("", f"model: {source.origin}"),
        ("", ""),
    ]
    for change in plan.changes:
        symbol, style = SYMBOLS[tuple(change.actions)]
        if change.is_noop:
            lines.append((style, f"  {symbol} {change.address}: {change.reason}"))
            continue
        lines.append((style, f"  {symbol} {change.address}  ({change.reason})"))
        if change.actions == UPDATE:
            before, after = change.before or {}, change.after or {}
            lines += [("yellow", f"      ~ {key}: {before.get(key)} → {after.get(key)}") for key in change.changed]
    return [*lines, ("", ""), ("bold", summary_line(plan))]


def print_plan(plan: Plan, source: ModelSource) -> None:
    out = console()
    for style, text in plan_lines(plan, source):
        out.print(escape(text), style=style or None)


def print_endpoint(endpoint: dict[str, Any]) -> None:
    out = console()
    out.print(f"endpoint {escape(endpoint['EndpointName'])}: {escape(endpoint['EndpointStatus'])}")
    out.print(f"  config {escape(endpoint['EndpointConfigName'])}")
    for production in endpoint["ProductionVariants"]:
        out.print(f"  variant {escape(production['VariantName'])}: model {escape(production['ModelName'])}")
    scaling = endpoint.get("Autoscaling")
    if scaling:
        target = scaling.get("TargetValue")
        tracking = f", tracking {target:g} invocations per instance" if target is not None else ""
        out.print(f"  autoscaling: {scaling['MinCapacity']}–{scaling['MaxCapacity']} instances{tracking}")


def print_deleted(changes: tuple[Change, ...], endpoint: str) -> None:
    out = console()
    for change in changes:
        out.print(f"[red]-[/] {escape(done_line(change))}")
    if not changes:
        out.print(f"no-op: no endpoint {escape(endpoint)}")
