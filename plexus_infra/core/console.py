"""The consoles both tools print to, and the one way an error or a list of problems reads on stderr.

Names, labels, paths and AWS messages are data, never rich markup: everything shown goes through `escape`.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plexus_infra.core.errors import Problem


def _width() -> int | None:
    """A terminal's own width; a pipe or a CI log gets wide lines rather than folded ones."""
    return None if sys.stdout.isatty() else 200


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=_width())


@functools.cache
def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: Any) -> str:
    """`text` as literal rich text: `[red]` in a score's name prints as `[red]`."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def print_problems(problems: list[Problem]) -> None:
    """One line per problem on stderr, `file:line:column: field: message`."""
    for problem in problems:
        error_console().print(f"[red]error:[/] {escape(str(problem))}")


def print_error(message: str) -> None:
    error_console().print(f"[red]error:[/] {escape(message)}")
