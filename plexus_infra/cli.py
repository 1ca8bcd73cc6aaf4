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
from typing import Any

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


def _add_aws_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--stats", action="store_true", help="print the number of AWS API calls made (stderr)")


def _add_write_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list resources that need nothing")


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

    plan = commands.add_parser("plan", help="show what apply would change (reads only)")
    _add_target(plan)
    _add_aws_flags(plan)
    plan.add_argument("--destroy", action="store_true", help="plan a destroy instead")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 0 when nothing would change, 2 when something would"
    )
    plan.add_argument("--json", action="store_true", help="print the versioned JSON plan instead of text")
    plan.add_argument("--out", metavar="FILE", help="save the plan (JSON) for `plexus-infra apply FILE`")
    plan.add_argument("--verbose", "-v", action="store_true", help="also list resources that need nothing")

    apply = commands.add_parser("apply", help="converge live state to a manifest, or apply a saved plan")
    _add_target(apply)
    _add_aws_flags(apply)
    _add_write_flags(apply)
    apply.add_argument("--adopt", action="store_true", help="take over existing resources without ownership tags")

    destroy = commands.add_parser("destroy", help="remove the environment (the bucket only if its guard allows)")
    _add_target(destroy)
    _add_aws_flags(destroy)
    _add_write_flags(destroy)

    outputs = commands.add_parser("outputs", help="show the published outputs and their export names")
    _add_target(outputs)
    _add_aws_flags(outputs)
    outputs.add_argument("--json", action="store_true", help="print JSON")

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


def _session(args: argparse.Namespace, manifest: str) -> Any:
    from plexus_infra.aws import Clients
    from plexus_infra.engine import connect
    from plexus_infra.manifest.validate import load_environment

    env = load_environment(manifest)
    return connect(env, Clients(env.region, args.profile))


def _report_stats(args: argparse.Namespace, session: Any) -> None:
    if getattr(args, "stats", False):
        clients = session.clients
        print(f"AWS API calls: {sum(clients.calls.values())} ({clients.writes} writes)", file=sys.stderr)


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from plexus_infra.engine import make_plan
    from plexus_infra.render import plan_text, print_plan

    session = _session(args, _targets(args)[0])
    plan, _ = make_plan(session, "destroy" if args.destroy else "apply")
    _report_stats(args, session)
    if args.out:
        Path(args.out).write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".txt").write_text(plan_text(plan, verbose=True) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print_plan(plan, verbose=args.verbose)
        if args.out:
            print(f"Saved the plan to {args.out}; apply exactly it with: plexus-infra apply {args.out}")
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def _confirm(args: argparse.Namespace, question: str) -> None:
    from plexus_infra.errors import GuardError

    if args.auto_approve:
        return
    if not sys.stdin.isatty():
        raise GuardError("no terminal to confirm on; rerun with --auto-approve to apply without asking")
    answer = input(f"{question} Only 'yes' will be accepted: ")
    if answer.strip() != "yes":
        raise GuardError("cancelled; nothing was changed")


def _converge(args: argparse.Namespace, operation: str) -> int:
    from plexus_infra.engine import check_adoption, execute, make_plan
    from plexus_infra.render import apply_progress, console, print_plan

    manifest, saved = _manifest_and_saved_plan(args)
    session = _session(args, manifest)
    plan, _ = make_plan(session, operation)
    if saved is not None:
        _refuse_if_stale(saved, plan, args.manifest)
    print_plan(plan, verbose=args.verbose)
    _report_stats(args, session)
    if not plan.has_changes:
        return EXIT_OK
    check_adoption(plan, getattr(args, "adopt", False) or bool(saved and _saved_adopts(saved)))
    if saved is None:
        _confirm(args, f"Do you want to {operation} {plan.environment}?")
    with apply_progress() as (on_step, progress):
        execute(session, plan, on_step=on_step, progress=progress)
    _report_stats(args, session)
    counts = plan.counts()
    verb = "Destroy" if operation == "destroy" else "Apply"
    console().print(
        f"[bold green]{verb} complete![/] {counts['add']} added, {counts['change']} changed, "
        f"{counts['destroy']} destroyed."
    )
    for note in plan.notes:
        console().print(f"[cyan]{note}[/]")
    return EXIT_OK


def _manifest_and_saved_plan(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    """`apply FILE.json` applies a saved plan (its manifest is recorded inside); anything else is a manifest."""
    from plexus_infra.manifest.loader import read_text
    from plexus_infra.plan import read_saved_plan

    target = _targets(args)[0]
    if not target.endswith(".json"):
        return target, None
    saved = read_saved_plan(read_text(target, what="saved plan", max_bytes=16 * 1024 * 1024), target)
    return saved["manifest"], saved


def _saved_adopts(saved: dict[str, Any]) -> bool:
    return bool(saved.get("adopt"))


def _refuse_if_stale(saved: dict[str, Any], plan: Any, source: str) -> None:
    from plexus_infra.errors import StalePlanError
    from plexus_infra.plan import stale_reasons

    reasons = stale_reasons(saved, plan)
    if reasons:
        raise StalePlanError(f"Saved plan {source} is stale: {'; '.join(reasons)}. Nothing was changed; plan again.")


def _cmd_apply(args: argparse.Namespace) -> int:
    return _converge(args, "apply")


def _cmd_destroy(args: argparse.Namespace) -> int:
    return _converge(args, "destroy")


def _cmd_outputs(args: argparse.Namespace) -> int:
    import json

    from plexus_infra.aws import Clients
    from plexus_infra.manifest.validate import load_environment
    from plexus_infra.render import print_outputs
    from plexus_infra.resources.outputs import read_outputs

    env = load_environment(_targets(args)[0])
    clients = Clients(env.region, args.profile)
    rows = read_outputs(clients, env)
    if args.json:
        print(json.dumps({"environment": env.name, "outputs": rows}, indent=2))
    else:
        print_outputs(rows)
    missing = [row["parameter"] for row in rows if row["value"] is None]
    if missing:
        from plexus_infra.errors import PlexusError

        raise PlexusError(f"not published yet: {', '.join(missing)}; run plexus-infra apply {env.source}")
    return EXIT_OK


COMMANDS = {
    "validate": _cmd_validate,
    "plan": _cmd_plan,
    "apply": _cmd_apply,
    "destroy": _cmd_destroy,
    "outputs": _cmd_outputs,
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
