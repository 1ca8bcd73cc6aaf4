"""`plexus-infra`: argument parsing, thin command adapters and the one map from errors to exit codes.

No AWS or diff logic lives here, and nothing heavy is imported before a command needs it, so
`plexus-infra --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra import __version__

# Stable exit codes (docs/ci.md). 2 means "changes present" for plan --detailed-exitcode and
# ci --plan-only --detailed-exitcode, and "live state drifted" for ci --drift-check.
from plexus_infra.core.exits import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ArgumentParser, run_command

if TYPE_CHECKING:
    from plexus_infra.ci import Result, Target
    from plexus_infra.core.aws import Clients
    from plexus_infra.engine import Hooks, Session
    from plexus_infra.fleet import Entry

EXIT_DRIFT = EXIT_CHANGES


def default_manifest(env: str | None) -> str:
    """`--env NAME` → environments/NAME.yaml; no flag → $PLEXUS_ENVIRONMENT, else development."""
    from plexus_infra.environments import environment_name, manifest_path

    return str(manifest_path(environment_name(env)))


def _add_target(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    parser.add_argument(
        "manifest",
        nargs="*" if many else "?",
        help="environment manifest"
        + ("s" if many else "")
        + " (default: environments/$PLEXUS_ENVIRONMENT.yaml, else development)",
    )
    parser.add_argument("--env", metavar="NAME", help="shorthand for environments/NAME.yaml")
    if many:
        parser.add_argument("--all", action="store_true", help="every manifest in environments/")


def _add_aws_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--stats", action="store_true", help="print the number of AWS API calls made (stderr)")


def _add_write_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list resources that need nothing")
    _add_lock_flags(parser)


def _add_lock_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another run's lock on the environment (default 0: fail at once)",
    )


def _targets(args: argparse.Namespace) -> list[str]:
    given = args.manifest if isinstance(args.manifest, list) else [args.manifest] if args.manifest else []
    if given and args.env:
        raise _UsageError("give a manifest path or --env, not both")
    if getattr(args, "all", False):
        if given or args.env:
            raise _UsageError("--all means every manifest in environments/: give no manifest or --env with it")
        from plexus_infra.fleet import discover

        return discover()
    return given or [default_manifest(args.env)]


def _several(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "all", False)) or len(_targets(args)) > 1


class _UsageError(Exception):
    """A command line that parses but makes no sense; `main` reports it as argparse does (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="plexus-infra",
        description="Declarative provisioner for Plexus's ML training infrastructure (S3, IAM, SSM), "
        "reconciled with boto3 against the live account; no state file.",
    )
    parser.add_argument("--version", action="version", version=f"plexus-infra {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for failures")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check manifests against the schema and AWS rules (no AWS calls)")
    _add_target(validate, many=True)

    plan = commands.add_parser("plan", help="show what apply would change (reads only; several environments at once)")
    _add_target(plan, many=True)
    _add_aws_flags(plan)
    plan.add_argument("--destroy", action="store_true", help="plan a destroy instead")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 0 when nothing would change, 2 when something would"
    )
    plan.add_argument("--json", action="store_true", help="print the versioned JSON plan instead of text")
    plan.add_argument(
        "--out",
        metavar="FILE",
        help="save the plan as JSON to FILE (not *.txt) and as text to FILE with a .txt suffix, "
        "for `plexus-infra apply FILE` (or `destroy FILE` with --destroy)",
    )
    plan.add_argument("--verbose", "-v", action="store_true", help="also list resources that need nothing")

    apply = commands.add_parser(
        "apply", help="converge live state to manifests (one after another), or apply a saved plan"
    )
    _add_target(apply, many=True)
    _add_aws_flags(apply)
    _add_write_flags(apply)
    apply.add_argument("--adopt", action="store_true", help="take over existing resources without ownership tags")

    destroy = commands.add_parser("destroy", help="remove the environment (the bucket only if its guard allows)")
    _add_target(destroy)
    _add_aws_flags(destroy)
    _add_write_flags(destroy)

    outputs = commands.add_parser("outputs", help="show the published outputs and their export names")
    _add_target(outputs, many=True)
    _add_aws_flags(outputs)
    outputs.add_argument("--json", action="store_true", help="print JSON")

    unlock = commands.add_parser(
        "force-unlock", help="break an environment's lock left by a run that died (the lock id is required)"
    )
    unlock.add_argument("lock_id", metavar="LOCK_ID", help="the id named in the lock conflict message")
    _add_target(unlock)
    unlock.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    unlock.add_argument("--force", action="store_true", help="also break a lock that has not expired yet")

    ci = commands.add_parser(
        "ci",
        help="the CI step: environment from the branch, validate, plan to artifacts, apply that saved plan",
        description="Pick the environment from the branch (main → production, staging → staging; see "
        "docs/ci.md), validate, save the plan as text and JSON artifacts, then apply exactly that saved plan. "
        "Other branches only plan. Exit codes: 0 ok, 1 error, 2 drift (--drift-check) or changes "
        "(--plan-only --detailed-exitcode).",
    )
    ci.add_argument("--branch", help="the branch (default: GITHUB_REF_NAME, CODEBUILD_*, CI_COMMIT_BRANCH, git)")
    ci.add_argument("--env", metavar="NAME", help="environment for plan-only and drift runs (default: the branch's)")
    ci_mode = ci.add_mutually_exclusive_group()
    ci_mode.add_argument("--plan-only", action="store_true", help="plan and save artifacts, never apply (PRs)")
    ci_mode.add_argument(
        "--drift-check", action="store_true", help="plan only; exit 2 when live state differs from the manifest"
    )
    ci.add_argument(
        "--all", action="store_true", help="with --plan-only: every environment, each plan under DIR/ENV/ (PRs)"
    )
    ci_mode.add_argument(
        "--apply-plan",
        metavar="FILE",
        help="apply exactly this saved plan (an earlier --plan-only run's, reviewed) if the branch deploys to it",
    )
    ci.add_argument(
        "--allow-data-loss",
        action="store_true",
        help="apply to a retained environment a plan that can lose data (refused otherwise)",
    )
    ci.add_argument(
        "--artifacts", metavar="DIR", default="plan-artifacts", help="where plan.json, plan.txt and report.md go"
    )
    ci.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="only with --plan-only: exit 2 when the plan has changes (refused otherwise)",
    )
    ci.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    ci.add_argument("--verbose", "-v", action="store_true", help="also list resources that need nothing")
    _add_lock_flags(ci)

    importing = commands.add_parser(
        "import",
        help="write a manifest for an existing bucket and role (e.g. a CDK stack's), read from live state",
        description="Read an existing bucket and role (reads only) and write the manifest that states them: only "
        "what differs from the defaults, refusing what a manifest cannot state. Then: plan it, and apply --adopt.",
    )
    importing.add_argument("name", metavar="NAME", help="the environment's name (development, staging, ...)")
    importing.add_argument("--bucket", required=True, help="the existing bucket's name")
    importing.add_argument("--role", required=True, help="the existing role's name or ARN (CDK names roles itself)")
    importing.add_argument("--out", metavar="FILE", help="where to write it (default: environments/NAME.yaml)")
    importing.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    importing.add_argument("--profile", help="AWS profile (default: the standard credential chain)")

    sandbox = commands.add_parser("sandbox", help="run a local AWS (moto) on 127.0.0.1 until Ctrl-C")
    sandbox.add_argument("--port", type=int, default=4566, help="port to listen on (default 4566)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from plexus_infra.core.console import console, print_problems
    from plexus_infra.core.errors import ManifestError
    from plexus_infra.fleet import clashes
    from plexus_infra.manifest.validate import load_environment

    failed = False
    valid = []
    for target in _targets(args):
        try:
            environment = load_environment(target)
        except ManifestError as exc:
            print_problems(exc.problems)
            failed = True
            continue
        valid.append(environment)
        console().print(f"[green]✓[/] {target}: valid ({environment.name}, {environment.region})")
    problems = clashes(valid)  # two manifests naming one bucket, role, prefix or environment
    print_problems(problems)
    return EXIT_ERROR if failed or problems else EXIT_OK


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from plexus_infra.core.console import console
    from plexus_infra.sandbox import running_sandbox

    with running_sandbox(port=args.port, host=args.host, aws_managed_policies=True) as sandbox:
        out = console()
        out.print(f"Local AWS sandbox on {sandbox.endpoint_url} (Ctrl-C stops it). To use it:", highlight=False)
        print(sandbox.exports(), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            out.print("Sandbox stopped.")
    return EXIT_OK


def _session(args: argparse.Namespace, manifest: str | None = None) -> Session:
    """The command's environment, opened the one way (`engine.open_session`): validated, account checked."""
    from plexus_infra.engine import open_session

    return open_session(manifest or _targets(args)[0], args.profile)


def _report_stats(args: argparse.Namespace, session: Session) -> None:
    if getattr(args, "stats", False):
        clients = session.clients
        print(f"AWS API calls: {sum(clients.calls.values())} ({clients.writes} writes)", file=sys.stderr)


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from plexus_infra.engine import make_plan
    from plexus_infra.render import print_plan, saved_plan_text
    from plexus_infra.saved_plan import plan_files, save_plan

    operation = "destroy" if args.destroy else "apply"
    if _several(args):
        return _plan_fleet(args, operation)
    if args.out:
        plan_files(args.out)  # refuse a bad --out before any AWS call
    session = _session(args)
    plan, _ = make_plan(session, operation)
    _report_stats(args, session)
    if args.out:
        save_plan(plan, args.out, saved_plan_text(plan))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print_plan(plan, verbose=args.verbose)
        if args.out:
            print(f"Saved the plan to {args.out}; {operation} exactly it with: plexus-infra {operation} {args.out}")
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def _plan_fleet(args: argparse.Namespace, operation: str) -> int:
    """Several environments: each plan in turn, then one summary; exit 1 if any failed, else 2 (with
    --detailed-exitcode) if any has changes."""
    import json

    from plexus_infra.fleet import open_fleet, plan_fleet
    from plexus_infra.render import fleet_document, print_fleet

    if args.out:
        raise _UsageError("--out saves one plan; for several, plexus-infra ci --plan-only --all saves each")
    entries, pool = open_fleet(_targets(args), args.profile)
    entries = plan_fleet(entries, operation)
    if args.stats:
        calls = sum(sum(c.calls.values()) for c in pool.all)
        print(f"AWS API calls: {calls} ({sum(c.writes for c in pool.all)} writes)", file=sys.stderr)
    if args.json:
        print(json.dumps(fleet_document(entries), indent=2))
    else:
        print_fleet(entries, verbose=args.verbose)
    return _fleet_exit(args, entries)


def _fleet_exit(args: argparse.Namespace, entries: list[Entry]) -> int:
    """Each failure one line; exit 1 if any environment failed, else 2 (--detailed-exitcode) if any has changes."""
    from plexus_infra.core.console import print_error

    for entry in entries:
        if entry.error:
            print_error(entry.error)
    if any(entry.error for entry in entries):
        return EXIT_ERROR
    changed = any(entry.plan is not None and entry.plan.has_changes for entry in entries)
    return EXIT_CHANGES if args.detailed_exitcode and changed else EXIT_OK


def _confirm(args: argparse.Namespace, question: str) -> None:
    from plexus_infra.core.errors import GuardError

    if args.auto_approve:
        return
    if not sys.stdin.isatty():
        raise GuardError("no terminal to confirm on; rerun with --auto-approve to apply without asking")
    answer = input(f"{question} Only 'yes' will be accepted: ")
    if answer.strip() != "yes":
        raise GuardError("cancelled; nothing was changed")


def _converge(args: argparse.Namespace, operation: str, target: str | None = None) -> int:
    from plexus_infra.engine import converge
    from plexus_infra.render import print_outcome, print_plan, run_hooks
    from plexus_infra.saved_plan import refuse_wrong_operation, saved_plan_at

    target = target or _targets(args)[0]
    saved = saved_plan_at(target)  # by content: a saved plan (whatever its name) or else a manifest
    if saved is not None:
        refuse_wrong_operation(saved, operation)
    session = _session(args, saved.manifest if saved else target)
    with contextlib.ExitStack() as stack:
        hooks = run_hooks(
            stack,
            verbose=args.verbose,
            lock_timeout=args.lock_timeout,
            show_plan=lambda plan: print_plan(plan, verbose=args.verbose),
            confirm=None if saved else lambda plan: _confirm(args, f"Do you want to {operation} {plan.environment}?"),
        )
        adopt = getattr(args, "adopt", False)
        outcome = converge(session, operation, saved=saved, adopt=adopt, lock_timeout=args.lock_timeout, hooks=hooks)
    _report_stats(args, session)
    print_outcome(outcome)
    return EXIT_OK


def _cmd_apply(args: argparse.Namespace) -> int:
    if not _several(args):
        return _converge(args, "apply")
    return _apply_fleet(args)


def _apply_fleet(args: argparse.Namespace) -> int:
    """Several environments, one after another, each behind its own confirmation and lock. Every manifest is
    validated first (one bad, none touched); a failure stops before the next, saying which were applied."""
    from plexus_infra.core.console import console
    from plexus_infra.core.errors import ManifestError, PlexusError
    from plexus_infra.fleet import validate_all

    targets = _targets(args)
    envs, problems = validate_all(targets)
    if problems:
        raise ManifestError(problems)
    done: list[str] = []
    for env in envs:
        console().print(f"[bold]── {env.name} ({env.source})[/]")
        try:
            _converge(args, "apply", env.source)
        except PlexusError as exc:
            left = [e.name for e in envs if e.name not in done and e.name != env.name]
            applied = ", ".join(done) or "none"
            raise PlexusError(
                f"{env.name}: {exc} (applied: {applied}; not applied: {', '.join([env.name, *left])})"
            ) from exc
        done.append(env.name)
    return EXIT_OK


def _cmd_destroy(args: argparse.Namespace) -> int:
    return _converge(args, "destroy")


def _cmd_force_unlock(args: argparse.Namespace) -> int:
    from plexus_infra.core.console import console, escape
    from plexus_infra.lock import force_unlock, utcnow

    session = _session(args)
    env = session.env
    broken = force_unlock(session.clients, env, args.lock_id, force=args.force)
    console().print(f"Broke {env.name}'s lock: it was held by {escape(broken.describe(utcnow()))}.")
    return EXIT_OK


def _cmd_ci(args: argparse.Namespace) -> int:
    from plexus_infra import ci
    from plexus_infra.core.console import console, escape
    from plexus_infra.render import drift_report, print_outcome, run_hooks

    if args.detailed_exitcode and not args.plan_only:
        raise _UsageError(
            "ci: --detailed-exitcode only applies with --plan-only (--drift-check always exits 2 on drift; "
            "a deploy run exits 0 or 1)"
        )
    if args.all and not args.plan_only:
        raise _UsageError("ci: --all only applies with --plan-only (a deploy branch deploys one environment)")
    mode = ci.Mode.DRIFT_CHECK if args.drift_check else ci.Mode.PLAN_ONLY if args.plan_only else ci.Mode.APPLY
    branch, source = ci.detect_branch(args.branch, os.environ)
    target = ci.choose_target(branch, source, env=args.env, mode=mode, branch_map=ci.branch_map())
    out = console()
    named = f" (branch {branch} from {source})" if branch and target.mode is not ci.Mode.APPLY else ""
    reason = f"{ci.Mode.PLAN_ONLY.value} of every environment" if args.all else target.reason
    out.print(f"[bold]plexus-infra ci:[/] {escape(reason)}{escape(named)}")
    if args.all:
        return _ci_plan_all(args, target)
    with contextlib.ExitStack() as stack:
        hooks = run_hooks(stack, verbose=args.verbose, lock_timeout=args.lock_timeout)
        if args.apply_plan:
            outcome = ci.apply_saved(
                target,
                args.apply_plan,
                profile=args.profile,
                lock_timeout=args.lock_timeout,
                hooks=hooks,
                allow_data_loss=args.allow_data_loss,
            )
            print_outcome(outcome)
            return EXIT_OK
        result = _ci_run(args, target, hooks)
    if result.outcome is not None:
        print_outcome(result.outcome)
    if target.mode is ci.Mode.DRIFT_CHECK:
        print(drift_report(result.plan))
        return EXIT_DRIFT if result.plan.has_changes else EXIT_OK
    if args.detailed_exitcode and result.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _ci_run(args: argparse.Namespace, target: Target, hooks: Hooks) -> Result:
    """One environment: plan, save the artifacts and the report, then (deploy branches) apply that plan."""
    from plexus_infra import ci
    from plexus_infra.core.console import console
    from plexus_infra.fleet import Entry
    from plexus_infra.render import append_step_summary, plan_report, print_plan, saved_plan_text

    show = None if target.mode is ci.Mode.DRIFT_CHECK else lambda plan: print_plan(plan, verbose=args.verbose)
    result = ci.run(
        target,
        default_manifest(target.environment),
        artifacts=Path(args.artifacts),
        text=saved_plan_text,
        report=lambda plan: plan_report([Entry(plan.environment, plan.manifest, plan=plan)], target.reason),
        profile=args.profile,
        lock_timeout=args.lock_timeout,
        show_plan=show,
        hooks=hooks,
        allow_data_loss=args.allow_data_loss,
    )
    console().print(f"Plan artifacts: {', '.join(str(path) for path in result.artifacts)}")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        append_step_summary(os.environ["GITHUB_STEP_SUMMARY"], result)
    return result


def _ci_plan_all(args: argparse.Namespace, target: Target) -> int:
    """`ci --plan-only --all`: every environment, each plan saved, one Markdown report for the pull request."""
    from plexus_infra import ci
    from plexus_infra.core.console import console
    from plexus_infra.fleet import discover
    from plexus_infra.render import plan_report, print_fleet, saved_plan_text

    artifacts = Path(args.artifacts)
    branch = f" for branch {target.branch}" if target.branch else ""
    context = f"Every environment planned{branch}, for review; nothing was applied."
    entries = ci.plan_all(
        discover(),
        artifacts=artifacts,
        text=saved_plan_text,
        report=lambda entries: plan_report(entries, context),
        profile=args.profile,
    )
    print_fleet(entries, verbose=args.verbose)
    report = artifacts / ci.REPORT_FILE
    console().print(f"Report: {report}; plans: {artifacts}/ENVIRONMENT/{ci.PLAN_FILE}")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(report.read_text(encoding="utf-8"))
    return _fleet_exit(args, entries)


def _cmd_outputs(args: argparse.Namespace) -> int:
    import json

    from plexus_infra.core.errors import PlexusError
    from plexus_infra.environments import read_outputs
    from plexus_infra.render import print_outputs

    if _several(args):
        from plexus_infra.fleet import open_fleet, refuse_failures

        entries, _ = open_fleet(_targets(args), args.profile)
        refuse_failures(entries)
        sessions = [entry.session for entry in entries if entry.session is not None]
    else:
        sessions = [_session(args)]
    documents, missing = [], []
    for session in sessions:
        env = session.env
        values = read_outputs(session.clients.ssm, env.outputs, env.name)
        rows = [
            {"key": o.key, "export_name": o.export_name, "parameter": o.parameter_name, "value": values[o.key]}
            for o in env.outputs
        ]
        documents.append({"environment": env.name, "outputs": rows})
        missing += [(row["parameter"], env.source) for row in rows if row["value"] is None]
        if not args.json:
            if len(sessions) > 1:
                print(f"{env.name} ({env.source})")
            print_outputs(rows)
    if args.json:
        print(json.dumps(documents[0] if len(sessions) == 1 and not _several(args) else documents, indent=2))
    if missing:
        names = ", ".join(name for name, _ in missing)
        sources = " ".join(dict.fromkeys(source for _, source in missing))
        raise PlexusError(f"not published yet: {names}; run plexus-infra apply {sources}")
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    import re

    from plexus_infra.core.aws import Clients
    from plexus_infra.core.console import console, escape
    from plexus_infra.core.errors import PlexusError
    from plexus_infra.environments import default_region, manifest_path
    from plexus_infra.importer import import_environment

    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", args.name):
        raise _UsageError(f"import: {args.name!r} is not an environment name (lowercase letters, digits and -)")
    out = Path(args.out) if args.out else manifest_path(args.name)
    if out.exists() and not args.force:
        raise PlexusError(f"{out} exists; give --force to overwrite it, or --out another file")
    clients = Clients(default_region(), args.profile)
    region = bucket_region(clients, args.bucket)
    if region != clients.region:
        clients = Clients(region, args.profile)
    imported = import_environment(clients, clients.identity(), args.name, bucket=args.bucket, role=args.role)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(imported.text, encoding="utf-8")
    except OSError as exc:
        raise PlexusError(f"cannot write {out}: {exc.strerror or exc}") from None
    console().print(f"Wrote {escape(out)} for {escape(args.name)} ({escape(args.bucket)}, role {escape(args.role)}).")
    for note in imported.notes:
        console().print(f"  note: {escape(note)}")
    console().print(f"Next: plexus-infra plan {escape(out)}; then plexus-infra apply {escape(out)} --adopt")
    return EXIT_OK


def bucket_region(clients: Clients, bucket: str) -> str:
    """Where a bucket lives (HeadBucket answers it, wherever the client is), so the import reads it there."""
    from plexus_infra.core.aws import call
    from plexus_infra.core.errors import PlexusError

    head = call(clients.s3.head_bucket, f"bucket {bucket}", absent=("404", "NoSuchBucket", "NotFound"), Bucket=bucket)
    if head is None:
        raise PlexusError(f"s3:HeadBucket bucket {bucket}: no such bucket")
    headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(head.get("BucketRegion") or headers.get("x-amz-bucket-region") or clients.region)


COMMANDS = {
    "validate": _cmd_validate,
    "plan": _cmd_plan,
    "apply": _cmd_apply,
    "destroy": _cmd_destroy,
    "outputs": _cmd_outputs,
    "force-unlock": _cmd_force_unlock,
    "ci": _cmd_ci,
    "import": _cmd_import,
    "sandbox": _cmd_sandbox,
}
# Commands that write: a CI runner's SIGTERM (a cancelled job) must unwind them like Ctrl-C, releasing the lock.
WRITING_COMMANDS = frozenset({"apply", "destroy", "ci"})


@contextlib.contextmanager
def _sigterm_interrupts(command: str) -> Iterator[None]:
    """While a writing command runs, SIGTERM raises KeyboardInterrupt so `finally` blocks (the lock's release)
    run. Signals only reach the main thread, so elsewhere (tests driving main() from threads) it does nothing."""
    if command not in WRITING_COMMANDS or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, map every expected failure to one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def command() -> int:
        try:
            with _sigterm_interrupts(args.command):
                return COMMANDS[args.command](args)
        except _UsageError as exc:
            parser.error(str(exc))

    return run_command(command, debug=args.debug)
