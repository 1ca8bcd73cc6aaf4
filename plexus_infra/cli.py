"""`plexus-infra`: argument parsing, thin command adapters and the one map from errors to exit codes.

No AWS or diff logic lives here, and nothing heavy is imported before a command needs it, so
`plexus-infra --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from plexus_infra import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130

ENVIRONMENTS_DIR = "environments"


def default_manifest(env: str | None) -> str:
    """`--env NAME` → environments/NAME.yaml; no flag → $PLEXUS_ENVIRONMENT, else development."""
    name = env or os.environ.get("PLEXUS_ENVIRONMENT") or "development"
    return str(Path(ENVIRONMENTS_DIR) / f"{name}.yaml")


def _add_target(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    parser.add_argument(
        "manifest",
        nargs="*" if many else "?",
        help="environment manifest (default: environments/$PLEXUS_ENVIRONMENT.yaml, else development)",
    )
    parser.add_argument("--env", metavar="NAME", help="shorthand for environments/NAME.yaml")


def _targets(args: argparse.Namespace) -> list[str]:
    given = args.manifest if isinstance(args.manifest, list) else [args.manifest] if args.manifest else []
    if given and args.env:
        raise _usage("give a manifest path or --env, not both")
    return given or [default_manifest(args.env)]


class _UsageError(Exception):
    pass


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plexus-infra",
        description="Declarative provisioner for Plexus's ML training infrastructure (S3, IAM, SSM), "
        "reconciled with boto3 against the live account; no state file.",
    )
    parser.add_argument("--version", action="version", version=f"plexus-infra {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for failures")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check manifests against the schema and AWS rules (no AWS calls)")
    _add_target(validate, many=True)

    sandbox = commands.add_parser("sandbox", help="run a local AWS (moto) on 127.0.0.1 until Ctrl-C")
    sandbox.add_argument("--port", type=int, default=4566, help="port to listen on (default 4566)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from plexus_infra.errors import ManifestError
    from plexus_infra.manifest.validate import load_environment
    from plexus_infra.render import console, print_problems

    failed = False
    for target in _targets(args):
        try:
            environment = load_environment(target)
        except ManifestError as exc:
            print_problems(exc.problems)
            failed = True
            continue
        console().print(f"[green]✓[/] {target}: valid ({environment.name}, {environment.region})")
    return EXIT_ERROR if failed else EXIT_OK


def _cmd_sandbox(args: argparse.Namespace) -> int:
    import threading

    from plexus_infra.render import console
    from plexus_infra.sandbox import running_sandbox

    with running_sandbox(port=args.port, host=args.host) as sandbox:
        out = console()
        out.print(f"Local AWS sandbox on {sandbox.endpoint_url} (Ctrl-C stops it). To use it:", highlight=False)
        print(sandbox.exports(), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            out.print("Sandbox stopped.")
    return EXIT_OK


COMMANDS = {
    "validate": _cmd_validate,
    "sandbox": _cmd_sandbox,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, map every expected failure to one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except _UsageError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from plexus_infra.errors import ManifestError, PlexusError

        if args.debug or not isinstance(exc, PlexusError):
            raise
        from plexus_infra.render import print_error, print_problems

        if isinstance(exc, ManifestError):
            print_problems(exc.problems)
        else:
            print_error(str(exc))
        return EXIT_ERROR
    return EXIT_ERROR
