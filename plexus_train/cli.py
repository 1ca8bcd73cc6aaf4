"""`plexus`: train scores, provision their SageMaker endpoints and get predictions.

Parsing and the one map from errors to exit codes live here; the work lives in the library modules, which
never print or exit. Nothing heavy (torch, transformers, boto3, sagemaker) is imported until a command runs,
so `plexus --help` is instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from plexus_infra.core.exits import EXIT_CHANGES, EXIT_OK, ArgumentParser, run_command
from plexus_train import __version__

if TYPE_CHECKING:
    from plexus_infra.core.aws import Clients
    from plexus_infra.environments import Target, TrainingOutputs
    from plexus_train.platforms.local import LocalPlatform
    from plexus_train.platforms.sagemaker import SageMakerPlatform
    from plexus_train.provision import Provisioner
    from plexus_train.scorecards import Score


def _add_score(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scorecard", required=True, metavar="NAME", help="scorecard name or key")
    parser.add_argument("--score", required=True, metavar="NAME", help="score name or key")
    # Accepted because the training issue's commands spell it; YAML under scorecards/ is the only source, so the
    # flag selects nothing and nothing reads it.
    parser.add_argument(
        "--yaml",
        action="store_true",
        help="accepted for compatibility: scorecards always come from scorecards/*.yaml (the only source)",
    )


def _add_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="environment whose outputs to use (default: $PLEXUS_ENVIRONMENT, else development)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="plexus", description="Train, deploy and query Plexus score classifiers.")
    parser.add_argument("--version", action="version", version=f"plexus {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for failures")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a score's classifier locally or as a SageMaker job")
    _add_score(train)
    train.add_argument("--data", metavar="NAME", help="datasources/NAME.yaml or a .csv/.parquet path")
    train.add_argument("--platform", choices=("local", "sagemaker"), help="override training.platform")
    train.add_argument("--epochs", type=_positive, metavar="N", help="override number_of_epochs")
    train.add_argument("--batch-size", type=_positive, metavar="N", help="override batch_size")
    _add_env(train)

    provision = commands.add_parser("provision", help="SageMaker endpoints for a score")
    actions = provision.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("endpoint", "create or update the endpoint (a rerun changes nothing)"),
        ("status", "show the endpoint"),
        ("delete", "delete the endpoint, its config and its model"),
    ):
        sub = actions.add_parser(action, help=text)
        _add_score(sub)
        _add_env(sub)
        if action == "endpoint":
            sub.add_argument("--model-s3-uri", metavar="URI", help="serve this model.tar.gz instead")
            sub.add_argument("--plan", action="store_true", help="show what would change (+ ~ -), change nothing")
            sub.add_argument("--json", action="store_true", help="with --plan: print the versioned JSON plan")
            sub.add_argument(
                "--detailed-exitcode",
                action="store_true",
                help="with --plan: exit 0 when nothing would change, 2 when something would",
            )

    predict = commands.add_parser("predict", help="classify texts with a trained score")
    _add_score(predict)
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", metavar="T", help="one text")
    given.add_argument("--file", metavar="F.csv", help="a CSV whose text column holds the texts")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--endpoint", metavar="NAME", help="invoke this SageMaker endpoint instead of local artifacts")
    _add_env(predict)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _Aws:
    """One command's AWS: the environment it targets, its clients, made once, and its published outputs, read
    once and only when a command needs them."""

    def __init__(self, env_name: str | None):
        self.env_name = env_name
        self._target: Target | None = None
        self._clients: Clients | None = None
        self._outputs: TrainingOutputs | None = None

    @property
    def target(self) -> Target:
        if self._target is None:
            from plexus_infra.environments import resolve_target

            self._target = resolve_target(self.env_name)
        return self._target

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            from plexus_infra.core.aws import Clients

            self._clients = Clients(self.target.region)
        return self._clients

    @property
    def outputs(self) -> TrainingOutputs:
        if self._outputs is None:
            from plexus_infra.environments import training_outputs

            self._outputs = training_outputs(self.clients.ssm, self.target)
        return self._outputs


def _score(args: argparse.Namespace) -> Score:
    from plexus_train.scorecards import find_score

    return find_score(args.scorecard, args.score)


def _cmd_train(args: argparse.Namespace) -> int:
    from plexus_infra.core.errors import PlexusError
    from plexus_train import datasources, views
    from plexus_train.locations import is_s3_uri

    score = _score(args).with_overrides(platform=args.platform, epochs=args.epochs, batch_size=args.batch_size)
    name = args.data or score.data
    if not name:
        raise PlexusError(f"{score.source}: score {score.name!r} names no data; give --data or set data:")
    source = datasources.resolve(name)
    score = datasources.with_columns(score, source)
    aws = _Aws(args.env)
    s3 = aws.clients.s3 if is_s3_uri(source.location) else None
    dataset = datasources.load(source, score.config.text_column, score.config.label_column, s3)
    views.print_training(score, dataset)
    result = _platform(score, aws).train(score, dataset)
    views.print_trained(result.location)
    return EXIT_OK


def _platform(score: Score, aws: _Aws) -> LocalPlatform | SageMakerPlatform:
    from plexus_infra.core.console import console
    from plexus_train.views import RichProgress, StatusLines

    if score.training.platform == "local":
        from plexus_train.platforms.local import LocalPlatform

        return LocalPlatform(RichProgress(console()))
    from plexus_train.platforms.sagemaker import SageMakerPlatform

    return SageMakerPlatform(aws.clients, aws.outputs, StatusLines(console()))


def _cmd_provision(args: argparse.Namespace) -> int:
    from plexus_infra.core.console import console
    from plexus_train import views
    from plexus_train.provision import Provisioner, endpoint_name

    score = _score(args)
    aws = _Aws(args.env)
    provisioner = Provisioner(aws.clients, aws.outputs, views.StatusLines(console()), aws.target.name)
    if args.action == "endpoint" and args.plan:
        return _plan_endpoint(args, provisioner, score)
    if args.action == "endpoint":
        views.print_provisioned(provisioner.provision(score, args.model_s3_uri))
    elif args.action == "status":
        endpoint = provisioner.status(score)
        if endpoint is None:
            from plexus_infra.core.errors import PlexusError

            raise PlexusError(f"no endpoint {endpoint_name(score)}; create it with plexus provision endpoint")
        views.print_endpoint(endpoint)
    else:
        views.print_deleted(provisioner.delete(score), endpoint_name(score))
    return EXIT_OK


def _plan_endpoint(args: argparse.Namespace, provisioner: Provisioner, score: Score) -> int:
    """`provision endpoint --plan`: reads only, then the plan as text or JSON."""
    import json

    from plexus_train import views

    source = provisioner.find(score, args.model_s3_uri)
    plan = provisioner.plan(score, source)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        views.print_plan(plan, source)
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from plexus_train import predict, views
    from plexus_train.locations import model_dir

    score = _score(args)
    if args.text is not None:
        texts = [predict.check_text(args.text)]
    else:
        texts = predict.texts_from_csv(Path(args.file), predict.text_column(score, model_dir(score)))
    if args.endpoint:
        answers = predict.predict_endpoint(_Aws(args.env).clients.runtime, args.endpoint, texts)
    else:
        answers = predict.predict_local(model_dir(score), texts)
    rows = [{"text": text, **answer} for text, answer in zip(texts, answers, strict=True)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        views.print_predictions(rows)
    return EXIT_OK


COMMANDS = {"train": _cmd_train, "provision": _cmd_provision, "predict": _cmd_predict}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, map every expected failure (the container code's too) to one line
    and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) == "endpoint" and not args.plan and (args.json or args.detailed_exitcode):
        parser.error("--json and --detailed-exitcode apply only with --plan")
    from plexus_train.container.errors import ContainerError

    return run_command(lambda: COMMANDS[args.command](args), debug=args.debug, expected=(ContainerError,))
