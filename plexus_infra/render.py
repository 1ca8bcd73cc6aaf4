"""Everything a person reads: plans, outputs, problems and errors, rendered with rich."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plexus_infra.errors import Problem


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


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
