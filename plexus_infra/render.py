"""Everything a person reads from `plexus-infra`: plans, drift, outputs, and the progress of a run, rendered
with rich on a terminal and as plain lines elsewhere. The commands (cli.py) decide what to show; the library
never prints (it reports through `engine.Hooks`, implemented here by `run_hooks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.console import console, escape
from plexus_infra.plan import SYMBOLS

if TYPE_CHECKING:
    from plexus_infra.ci import Result
    from plexus_infra.engine import Hooks, Outcome
    from plexus_infra.fleet import Entry
    from plexus_infra.lock import LockInfo
    from plexus_infra.plan import Change, Plan

# --- plans ----------------------------------------------------------------------------------------------


Line = tuple[str, str]  # (rich style, plain text)


def _value(value: Any) -> str:
    import json

    return json.dumps(_compact(value), sort_keys=True, ensure_ascii=False)


EMPTY = (None, [], {})  # values that are not worth a line of their own


def _compact(value: Any) -> Any:
    """Drop empty and null fields inside mappings: what is not set need not be shown."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v not in EMPTY}
    return value


def _is_policy(value: Any) -> bool:
    return isinstance(value, dict) and "Statement" in value


def _attribute_lines(name: str, before: Any, after: Any, indent: str) -> list[Line]:
    """How one attribute changes: policies as a JSON diff, mappings key by key, scalars before → after."""
    from plexus_infra.policy import canonical_json, policies_equal, policy_diff_lines

    if before == after or (before in EMPTY and after in EMPTY):
        return []
    if _is_policy(before) and _is_policy(after) and policies_equal(before, after):
        return []  # the same policy written differently: nothing a reviewer needs to see
    if _is_policy(before) and _is_policy(after):
        diff = [line for line in policy_diff_lines(before, after)[2:] if not line.startswith("@@")]
        return [("yellow", f"{indent}~ {name}:")] + [
            ("green" if t.startswith("+") else "red" if t.startswith("-") else "dim", f"{indent}    {t}") for t in diff
        ]
    if _is_policy(before) or _is_policy(after):
        sign, style, document = ("+", "green", after) if after is not None else ("-", "red", before)
        body = [(style, f"{indent}    {line}") for line in canonical_json(document).splitlines()]
        return [(style, f"{indent}{sign} {name}:"), *body]
    if isinstance(before, dict | None) and isinstance(after, dict | None):
        before, after = before or {}, after or {}
        return [
            line
            for key in sorted(set(before) | set(after), key=str)
            for line in _attribute_lines(f"{name}.{key}", before.get(key), after.get(key), indent)
        ]
    if before is None:
        return [("green", f"{indent}+ {name} = {_value(after)}")]
    if after is None:
        return [("red", f"{indent}- {name} = {_value(before)}")]
    return [("yellow", f"{indent}~ {name}: {_value(before)} → {_value(after)}")]


def change_lines(change: Change, *, verbose: bool = False) -> list[Line]:
    """A resource's block in the plan: its symbol and address, then what changes and why."""
    symbol, style = SYMBOLS[tuple(change.actions)]
    if change.is_noop:
        return [(style, f"  {symbol} {change.address}: {change.reason}")] if verbose else []
    header = f"  {symbol} {change.address}"
    if change.reason:
        header += f"  ({change.reason})"
    lines: list[Line] = [(style, header)]
    lines += [("bold red", f"      ! data loss: {reason}") for reason in change.data_loss]
    if "delete" in change.actions:
        return lines
    before, after = change.before or {}, change.after or {}
    for name in change.changed:
        lines += _attribute_lines(name, before.get(name) if change.before else None, after.get(name), "      ")
    return lines


def plan_lines(plan: Plan, *, verbose: bool = False) -> list[Line]:
    """The whole plan as styled lines: a header, each change, the notes and Terraform's summary line."""
    from plexus_infra.plan import summary_line

    verb = "Destroy plan" if plan.operation == "destroy" else "Plan"
    lines: list[Line] = [
        ("bold", f"{verb} for {plan.environment} ({plan.manifest}), account {plan.account}, {plan.region}")
    ]
    body = [line for change in plan.changes for line in change_lines(change, verbose=verbose)]
    if body:
        lines += [("", ""), *body]
    lines += [("cyan", f"  note: {note}") for note in plan.notes]
    lines += [("", ""), ("bold", summary_line(plan))]
    return lines


def plan_text(plan: Plan, *, verbose: bool = False) -> str:
    """The plan as plain text (saved as a CI artifact, compared in tests)."""
    return "\n".join(text for _, text in plan_lines(plan, verbose=verbose))


def print_plan(plan: Plan, *, verbose: bool = False) -> None:
    """Colours on a terminal; elsewhere (CI logs, pipes) the same lines as plain text, without loading rich."""
    import sys

    if not sys.stdout.isatty():
        print(plan_text(plan, verbose=verbose), flush=True)
        return
    out = console()
    for style, text in plan_lines(plan, verbose=verbose):
        out.print(escape(text), style=style or None)


def print_outputs(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("export name", "parameter", "value"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["export_name"], row["parameter"], row["value"] if row["value"] is not None else "(missing)")
    console().print(table)


@contextlib.contextmanager
def apply_progress() -> Iterator[tuple[Callable[[Any], None], Callable[[str, int, int | None], None]]]:
    """Callbacks for the engine: one line per change as it starts, and a live counter for long deletions."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    out = console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=out, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def on_step(change: Any) -> None:
            symbol, style = SYMBOLS[tuple(change.actions)]
            out.print(f"[{style}]{symbol} {escape(change.address)}[/]")

        def progress(description: str, done: int, total: int | None) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, description=f"{description}: {done:,} removed")

        yield on_step, progress


def saved_plan_text(plan: Plan) -> str:
    """The text saved beside a JSON plan (plan.txt): every resource, no-ops included."""
    return plan_text(plan, verbose=True)


def drift_report(plan: Plan) -> str:
    """The drift of one environment as one block: what differs, attribute by attribute, and what to run."""
    if not plan.has_changes:
        return f"No drift: {plan.environment} matches {plan.manifest}."
    lines = [
        f"Drift in {plan.environment} (account {plan.account}, {plan.region}): {len(plan.pending)} of "
        f"{len(plan.changes)} resources differ from {plan.manifest}"
    ]
    lines += [text for change in plan.pending for _, text in change_lines(change)]
    lines.append(f"To converge: plexus-infra apply {plan.manifest}")
    return "\n".join(lines)


def append_step_summary(path: str | Path, result: Result) -> None:
    """Add the plan (or the drift block) to a CI job's summary page, e.g. GitHub's $GITHUB_STEP_SUMMARY."""
    from plexus_infra.ci import Mode

    text = drift_report(result.plan) if result.target.mode is Mode.DRIFT_CHECK else plan_text(result.plan)
    heading = f"### plexus-infra ci: {result.target.environment} ({result.target.mode.value})"
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(f"{heading}\n\n{result.target.reason}\n\n```\n{text}\n```\n")


def print_outcome(outcome: Outcome) -> None:
    """The last lines of an apply or destroy: what it did, and what destroy kept."""
    plan = outcome.plan
    if outcome.superseded:
        console().print(f"Nothing to do: another run converged {plan.environment} while this one waited for the lock.")
        return
    if not outcome.applied:
        return
    counts = plan.counts()
    verb = "Destroy" if plan.operation == "destroy" else "Apply"
    console().print(
        f"[bold green]{verb} complete![/] {counts['add']} added, {counts['change']} changed, "
        f"{counts['destroy']} destroyed."
    )
    for note in plan.notes:
        console().print(f"[cyan]{escape(note)}[/]")


def run_hooks(
    stack: contextlib.ExitStack,
    *,
    verbose: bool,
    lock_timeout: float,
    show_plan: Callable[[Plan], None] | None = None,
    confirm: Callable[[Plan], None] | None = None,
) -> Hooks:
    """The engine's callbacks for a person at a terminal. The live progress display starts at the first write,
    after any confirmation prompt, so the two never fight over the terminal; `stack` closes it."""
    from plexus_infra.engine import Hooks, ignore

    live: list[Any] = []

    def callbacks() -> Any:
        if not live:
            live.append(stack.enter_context(apply_progress()))
        return live[0]

    def waiting(holder: LockInfo) -> None:
        from plexus_infra.lock import utcnow

        console().print(
            f"[yellow]Waiting up to {lock_timeout:g}s for the lock held by {escape(holder.describe(utcnow()))}[/]"
        )

    def took_over(holder: LockInfo) -> None:
        from plexus_infra.lock import utcnow

        console().print(f"[yellow]Broke the lock left by a run that is gone: {escape(holder.describe(utcnow()))}[/]")

    def replanned(plan: Plan) -> None:
        console().print("[yellow]The live state changed while this run waited for the lock; the plan is now:[/]")
        print_plan(plan, verbose=verbose)

    return Hooks(
        show_plan=show_plan or ignore,
        waiting=waiting,
        took_over=took_over,
        replanned=replanned,
        confirm=confirm,
        on_step=lambda change: callbacks()[0](change),
        progress=lambda *update: callbacks()[1](*update),
    )


# --- several environments -----------------------------------------------------------------------------------


def fleet_row(entry: Entry) -> dict[str, Any]:
    """One environment's line of the summary: counts, whether live state drifted, its data-loss marks."""
    plan = entry.plan
    if plan is None:
        return {"environment": entry.environment, "account": entry.account or "-", "status": "failed"}
    counts = plan.counts()
    drifted = any(c.before is not None and not c.foreign for c in plan.pending)
    return {
        "environment": entry.environment,
        "account": plan.account,
        "region": plan.region,
        **counts,
        "drift": "yes" if drifted else "no",
        "data_loss": len(plan.data_loss),
        "status": "changes" if plan.has_changes else "no changes",
    }


FLEET_COLUMNS = ("environment", "account", "region", "add", "change", "destroy", "drift", "data_loss", "status")


def fleet_summary_text(entries: list[Entry]) -> str:
    """The summary table of a fleet run, as aligned plain text (a terminal, a CI log, plan.txt alike)."""
    rows = [fleet_row(entry) for entry in entries]
    header = [column.replace("_", " ") for column in FLEET_COLUMNS]
    cells = [[str(row.get(column, "-")) for column in FLEET_COLUMNS] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def print_fleet(entries: list[Entry], *, verbose: bool = False) -> None:
    """Each environment's plan in turn, then the summary table."""
    for entry in entries:
        if entry.plan is not None:
            print_plan(entry.plan, verbose=verbose)
            print()
    print(f"Summary of {len(entries)} environments\n{fleet_summary_text(entries)}", flush=True)


def fleet_document(entries: list[Entry]) -> list[dict[str, Any]]:
    """`plan --json` for several environments: each one's versioned plan document, or what failed."""
    from plexus_infra.plan import FORMAT_VERSION, TOOL

    return [
        entry.plan.to_json()
        if entry.plan is not None
        else {
            "format_version": FORMAT_VERSION,
            "tool": TOOL,
            "environment": entry.environment,
            "manifest": entry.manifest,
            "error": entry.error,
        }
        for entry in entries
    ]


REPORT_MARKER = "<!-- plexus-infra-plan-report -->"  # how a CI step finds its earlier pull-request comment
REPORT_INLINE_LINES = 30  # a longer plan is folded into a <details> block


def plan_report(entries: list[Entry], context: str) -> str:
    """One Markdown report of a CI run's plans, for a pull request comment or a job summary: destructive and
    data-loss changes first, a summary table, then each environment's plan (folded when long)."""
    warnings = [
        f"- **{entry.environment}**: {symbol} `{change.address}`" + (f": {reason}" if reason else "")
        for entry in entries
        if entry.plan is not None
        for change in entry.plan.pending
        for symbol, reason in _alarms(change)
    ]
    failed = [f"- **{entry.environment}**: {entry.error}" for entry in entries if entry.error]
    lines = [REPORT_MARKER, f"## plexus-infra plan: {len(entries)} environment{'s' if len(entries) != 1 else ''}", ""]
    lines += [context, ""]
    if warnings:
        lines += ["> [!WARNING]", "> **Destructive or data-loss changes: review these first**", ">"]
        lines += [f"> {line}" for line in warnings]
        lines.append("")
    if failed:
        lines += ["**Could not be planned:**", *failed, ""]
    header = [column.replace("_", " ") for column in FLEET_COLUMNS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in entries:
        row = fleet_row(entry)
        lines.append("| " + " | ".join(str(row.get(column, "-")) for column in FLEET_COLUMNS) + " |")
    for entry in entries:
        if entry.plan is None:
            continue
        from plexus_infra.plan import summary_line

        text = plan_text(entry.plan)
        lines += ["", f"### {entry.environment}: {summary_line(entry.plan)}", ""]
        block = ["```", text, "```"]
        if len(text.splitlines()) > REPORT_INLINE_LINES:
            block = [
                f"<details><summary>The plan ({len(text.splitlines())} lines)</summary>",
                "",
                *block,
                "",
                "</details>",
            ]
        lines += block
    return "\n".join(lines) + "\n"


def _alarms(change: Change) -> list[tuple[str, str]]:
    """What a reviewer must not miss in a change: a delete (or replace), and each data-loss reason."""
    found = [("🗑️ deletes", "")] if "delete" in change.actions else []
    return found + [("⚠️ data loss", reason) for reason in change.data_loss]
