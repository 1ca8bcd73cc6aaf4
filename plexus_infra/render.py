"""Everything a person reads: plans, outputs, problems and errors, rendered with rich."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plexus_infra.errors import Problem


def _width() -> int | None:
    """A terminal's own width; a pipe or a CI log gets wide lines rather than folded ones."""
    import sys

    return None if sys.stdout.isatty() else 200


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=_width())


@functools.cache
def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_problems(problems: list[Problem]) -> None:
    """One line per problem on stderr, `file:line:column: field: message`."""
    for problem in problems:
        error_console().print(f"[red]error:[/] {escape(str(problem))}")


def print_error(message: str) -> None:
    error_console().print(f"[red]error:[/] {escape(message)}")


def escape(text: Any) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


# --- plans ----------------------------------------------------------------------------------------------

SYMBOLS: dict[tuple[str, ...], tuple[str, str]] = {
    ("create",): ("+", "green"),
    ("update",): ("~", "yellow"),
    ("delete",): ("-", "red"),
    ("delete", "create"): ("-/+", "magenta"),
    ("no-op",): ("=", "dim"),
}

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


def change_lines(change: Any, *, verbose: bool = False) -> list[Line]:
    """A resource's block in the plan: its symbol and address, then what changes and why."""
    symbol, style = SYMBOLS[tuple(change.actions)]
    if change.is_noop:
        return [(style, f"  {symbol} {change.address}: {change.reason}")] if verbose else []
    header = f"  {symbol} {change.address}"
    if change.reason:
        header += f"  ({change.reason})"
    lines: list[Line] = [(style, header)]
    if "delete" in change.actions:
        return lines
    before, after = change.before or {}, change.after or {}
    for name in change.changed:
        lines += _attribute_lines(name, before.get(name) if change.before else None, after.get(name), "      ")
    return lines


def plan_lines(plan: Any, *, verbose: bool = False) -> list[Line]:
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


def plan_text(plan: Any, *, verbose: bool = False) -> str:
    """The plan as plain text (saved as a CI artifact, compared in tests)."""
    return "\n".join(text for _, text in plan_lines(plan, verbose=verbose))


def print_plan(plan: Any, *, verbose: bool = False) -> None:
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
            bar.update(tasks[description], completed=done, description=f"{description}: {done:,} versions removed")

        yield on_step, progress
