"""`plexus`: train scores, provision their SageMaker endpoints and get predictions.

Parsing and the one map from errors to exit codes live here; the work lives in the library modules, which
never print or exit. Nothing heavy (torch, transformers, boto3, sagemaker) is imported until a command runs,
so `plexus --help` is instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from plexus_infra.core.exits import EXIT_OK, ArgumentParser, run_command
from plexus_train import __version__


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


def _console() -> Any:
    """The shared rich console, printing plain text: names, labels and paths are data, never markup."""
    from plexus_infra.core.console import console

    return console()


def escape(text: Any) -> str:
    from plexus_infra.core.console import escape as rich_escape

    return rich_escape(text)


class _Aws:
    """One command's AWS: the environment's clients, made once, and its published outputs, read once and only
    when a command needs them."""

    def __init__(self, env_name: str | None):
        self.env_name = env_name
        self._target: Any = None
        self._clients: Any = None
        self._outputs: Any = None

    @property
    def clients(self) -> Any:
        if self._clients is None:
            from plexus_infra.core.aws import Clients
            from plexus_infra.environments import resolve_target

            self._target = resolve_target(self.env_name)
            self._clients = Clients(self._target.region)
        return self._clients

    @property
    def outputs(self) -> Any:
        if self._outputs is None:
            from plexus_infra.environments import training_outputs

            clients = self.clients
            self._outputs = training_outputs(clients.ssm, self._target)
        return self._outputs


def _score(args: argparse.Namespace) -> Any:
    from plexus_train.scorecards import find_score

    return find_score(args.scorecard, args.score)


def _cmd_train(args: argparse.Namespace) -> int:
    from plexus_infra.core.errors import PlexusError
    from plexus_train import datasources

    score = _score(args).with_overrides(platform=args.platform, epochs=args.epochs, batch_size=args.batch_size)
    name = args.data or score.data
    if not name:
        raise PlexusError(f"{score.source}: score {score.name!r} names no data; give --data or set data:")
    source = datasources.resolve(name)
    score = datasources.with_columns(score, source)
    aws = _Aws(args.env)
    s3 = aws.clients.s3 if source.location.startswith("s3://") else None
    dataset = datasources.load(source, score.config.text_column, score.config.label_column, s3)
    out = _console()
    out.print(
        escape(
            f"{score.scorecard_name} / {score.name}: {len(dataset.texts)} examples from {dataset.source}, "
            f"classes {dataset.class_counts()}, platform {score.training.platform}"
        )
    )
    result = _platform(score, aws, out).train(score, dataset)
    out.print(f"[green]✓[/] model: {escape(result.location)}")
    return EXIT_OK


def _platform(score: Any, aws: _Aws, out: Any) -> Any:
    from plexus_train.progress import RichReporter, StatusReporter

    if score.training.platform == "local":
        from plexus_train.platforms.local import LocalPlatform

        return LocalPlatform(RichReporter(out))
    from plexus_train.platforms.sagemaker import SageMakerPlatform

    return SageMakerPlatform(aws.clients, aws.outputs, StatusReporter(out))


def _cmd_provision(args: argparse.Namespace) -> int:
    from plexus_train.progress import StatusReporter
    from plexus_train.provision import Provisioner, endpoint_name

    score = _score(args)
    aws = _Aws(args.env)
    out = _console()
    provisioner = Provisioner(aws.clients, aws.outputs, StatusReporter(out))
    if args.action == "endpoint":
        result = provisioner.provision(score, args.model_s3_uri)
        out.print(f"model: {escape(result.model)}")
        for change in result.changes:
            mark = "[red]-[/]" if change.startswith("deleted") else "[green]+[/]"
            out.print(f"{mark} {escape(change)}")
        for noop in result.noops:
            out.print(f"  no-op: {noop}")
        verdict = "updated" if result.changes else "no changes"
        out.print(f"endpoint {result.endpoint_name}: InService ({verdict})")
    elif args.action == "status":
        endpoint = provisioner.status(score)
        if endpoint is None:
            from plexus_infra.core.errors import PlexusError

            raise PlexusError(f"no endpoint {endpoint_name(score)}; create it with plexus provision endpoint")
        out.print(f"endpoint {endpoint['EndpointName']}: {endpoint['EndpointStatus']}")
        out.print(f"  config {endpoint['EndpointConfigName']}")
        for production in endpoint["ProductionVariants"]:
            out.print(f"  variant {production['VariantName']}: model {production['ModelName']}")
    else:
        deleted = provisioner.delete(score)
        for item in deleted:
            out.print(f"[red]-[/] deleted {escape(item)}")
        if not deleted:
            out.print(f"no-op: no endpoint {endpoint_name(score)}")
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from plexus_train import predict
    from plexus_train.platforms.local import model_dir

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
        _print_predictions(rows)
    return EXIT_OK


def _print_predictions(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("text", "value", "confidence")
    for row in rows:
        table.add_row(escape(row["text"]), escape(row["value"]), f"{row['confidence']:.3f}")
    _console().print(table)


COMMANDS = {"train": _cmd_train, "provision": _cmd_provision, "predict": _cmd_predict}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, map every expected failure to one line and an exit code."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args), debug=args.debug)
