"""Exit codes, and the one place that turns an expected failure into one line on stderr.

Both console scripts (`plexus-infra`, `plexus`) run their commands through `run_command`, so a failure
reads and exits the same way everywhere: one line, exit 1, no traceback unless `--debug`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


def run_command(command: Callable[[], int], *, debug: bool = False, expected: tuple[type[Exception], ...] = ()) -> int:
    """Run one command; map PlexusError (and the `expected` types, for code that cannot import PlexusError, such
    as what ships into SageMaker containers) to its lines on stderr and exit 1, Ctrl-C to 130."""
    from plexus_infra.core.errors import ManifestError, PlexusError

    try:
        return command()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (PlexusError, *expected) as exc:
        if debug:
            raise
        from plexus_infra.core.console import print_error, print_problems

        if isinstance(exc, ManifestError):
            print_problems(exc.problems)
        else:
            print_error(str(exc))
        return EXIT_ERROR


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1: exit 2 means "changes present" here, as in Terraform."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")
