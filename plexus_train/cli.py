"""`plexus`: train scores, provision their SageMaker endpoints and get predictions.

Parsing and the one map from errors to exit codes live here; the work lives in the library modules, which
never print or exit. Nothing heavy (torch, transformers, boto3, sagemaker) is imported until a command runs,
so `plexus --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
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
    from plexus_train.views import TrainingRow


def _add_score(
    parser: argparse.ArgumentParser,
    *,
    score_required: bool = True,
    score_help: str = "",
    scorecard_required: bool = True,
) -> None:
    parser.add_argument(
        "--scorecard",
        "--scorecard-name",
        dest="scorecard",
        required=scorecard_required,
        metavar="NAME",
        help="scorecard name or key",
    )
    parser.add_argument(
        "--score",
        "--score-name",
        dest="score",
        required=score_required,
        metavar="NAME",
        help=score_help or "score name or key",
    )
    # Accepted because Plexus's commands spell it; YAML under scorecards/ is the only source, so the flag selects
    # nothing and nothing reads it.
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


def _add_precision(local: argparse._MutuallyExclusiveGroup) -> None:
    """--precision, in the group that holds --endpoint and --endpoint-url: it is how local artifacts compute."""
    local.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="local artifacts: float32 (default; the ONNX form when saved) or bfloat16 (the torch form under "
        "autocast: on a CPU with AMX its forward passes are ~3x faster, which pays for importing torch on large "
        "files; probabilities within 0.01)",
    )


PROVISION_ACTIONS = ("endpoint", "status", "delete")
MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)  # SageMaker serverless memory, MB


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="plexus", description="Train, deploy and query Plexus score classifiers.")
    parser.add_argument("--version", action="version", version=f"plexus {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for failures")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a score's classifier (or every one of a scorecard's)")
    _add_score(
        train,
        score_required=False,
        scorecard_required=False,
        score_help="score name or key (default: every trainable score)",
    )
    train.add_argument("--data", metavar="NAME|PATH", help="datasources/NAME.yaml or a .csv/.parquet path")
    train.add_argument("--platform", choices=("local", "sagemaker"), help="override training.platform")
    train.add_argument(
        "--instance-type",
        type=_training_instance_type,
        metavar="TYPE",
        help="override training.instance_type; local runs the SageMaker job on this machine (implies --platform "
        "sagemaker)",
    )
    train.add_argument("--no-wait", action="store_true", help="SageMaker: create the job, print its name, exit")
    train.add_argument("--attach", metavar="JOB", help="wait for a SageMaker training job and publish its model")
    train.add_argument("--epochs", type=_bounded(1, 1000), metavar="N", help="override number_of_epochs")
    train.add_argument("--batch-size", type=_bounded(1, 4096), metavar="N", help="override batch_size")
    train.add_argument("--learning-rate", type=_rate, metavar="RATE", help="override learning_rate (0 < RATE ≤ 1)")
    train.add_argument("--fresh", action="store_true", help="first remove the score's local model an earlier run left")
    train.add_argument("--verbose", action="store_true", help="a line per optimizer step (loss, learning rate)")
    _add_env(train)

    provision = commands.add_parser(
        "provision",
        help="SageMaker endpoints for a score",
        description="plexus provision --scorecard X --score Y [...] is plexus provision endpoint ...",
    )
    actions = provision.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("endpoint", "create or update the endpoint (a rerun changes nothing); the default action"),
        ("status", "show the endpoint"),
        ("delete", "delete the endpoint, its autoscaling, its configs and its models"),
    ):
        sub = actions.add_parser(action, help=text)
        _add_score(sub)
        _add_env(sub)
        if action == "endpoint":
            _add_deployment(sub)
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
    shown = predict.add_mutually_exclusive_group()
    shown.add_argument("--format", choices=("table", "json", "yaml"), default=None, help="output (default: table)")
    shown.add_argument("--json", action="store_true", help="the same as --format json")
    where = predict.add_mutually_exclusive_group()
    where.add_argument("--endpoint", metavar="NAME", help="invoke this SageMaker endpoint instead of local artifacts")
    where.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="POST to this SageMaker-style server (plexus serve), e.g. http://127.0.0.1:8080",
    )
    _add_precision(where)
    _add_env(predict)

    serve = commands.add_parser(
        "serve", help="serve a score's model.tar.gz here, as a SageMaker inference container does (/ping, /invocations)"
    )
    _add_score(serve)
    serve.add_argument("--port", type=_bounded(0, 65535), default=8080, metavar="N", help="port (default 8080; 0: any)")
    serve.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--model",
        metavar="PATH|s3://...",
        help="this model.tar.gz (default: the bucket's models/{sc}/{s}/)",
    )
    _add_env(serve)
    from plexus_train.evaluation.command import register_evaluate

    register_evaluate(commands)
    return parser


def _add_deployment(parser: argparse.ArgumentParser) -> None:
    """The flags that override the score's `deployment:` block."""
    parser.add_argument("--deployment-type", choices=("serverless", "realtime"), help="override deployment.type")
    parser.add_argument("--memory", type=int, choices=MEMORY_SIZES, metavar="MB", help="serverless memory (MB)")
    parser.add_argument("--max-concurrency", type=_bounded(1, 200), metavar="N", help="serverless concurrency")
    parser.add_argument("--instance-type", type=_instance_type, metavar="TYPE", help="realtime instance type")
    parser.add_argument("--min-instances", type=_bounded(1, 100), metavar="N", help="realtime instances, at least")
    parser.add_argument("--max-instances", type=_bounded(1, 100), metavar="N", help="realtime instances, at most")
    parser.add_argument(
        "--target-invocations", type=_positive_number, metavar="N", help="autoscaling: invocations per instance"
    )


def _bounded(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    parse.__name__ = "integer"
    return parse


def _rate(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be above 0 and at most 1")
    return value


def _positive_number(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _training_instance_type(text: str) -> str:
    return text if text == "local" else _instance_type(text)


def _instance_type(text: str) -> str:
    import re

    if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", text):
        raise argparse.ArgumentTypeError("must be a SageMaker instance type such as ml.m5.large")
    return text


def with_default_action(argv: Sequence[str]) -> list[str]:
    """`provision --scorecard X ...` (no action) as `provision endpoint --scorecard X ...`, as Plexus spells it."""
    argv = list(argv)
    commands = [i for i, arg in enumerate(argv) if not arg.startswith("-")]
    if commands and argv[commands[0]] == "provision":
        at = commands[0] + 1
        rest = argv[at:]
        if rest and rest[0] not in PROVISION_ACTIONS and rest[0] not in ("-h", "--help"):
            argv.insert(at, "endpoint")
    return argv


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
    """One score, or without --score every score of the scorecard that this tool can train, then one table; or
    with --attach, a job already created."""
    aws = _Aws(args.env)
    if args.attach:
        from plexus_train import views

        result = _sagemaker(aws, args.verbose).attach(args.attach)
        views.print_trained(result.location)
        return EXIT_OK
    if args.score:
        _train(_score(args), args, aws)
        return EXIT_OK
    return _train_scorecard(args, aws)


def _train(score: Score, args: argparse.Namespace, aws: _Aws) -> TrainingRow:
    """Check the score's data, then train it; the table's row for it."""
    from plexus_train import datasources, views
    from plexus_train.locations import is_s3_uri
    from plexus_train.platforms.local import forget_local_model

    score = score.with_overrides(
        platform=args.platform, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate
    ).with_training(instance_type=args.instance_type)
    if args.instance_type == "local" and args.platform is None:
        score = score.with_overrides(platform="sagemaker")
    if args.no_wait and (score.training.platform != "sagemaker" or score.training.instance_type == "local"):
        from plexus_infra.core.errors import PlexusError

        where = "in local mode" if score.training.platform == "sagemaker" else "locally"
        raise PlexusError(f"--no-wait applies to SageMaker jobs; {score.name!r} trains {where}, on this machine")
    source = datasources.for_score(score, args.data)
    text, labels = datasources.columns(score, source)
    s3 = aws.clients.s3 if is_s3_uri(source.location) else None
    dataset = datasources.load(source, text, labels, s3)
    datasources.check_classes(score, dataset)
    score = datasources.with_columns(score, dataset)
    if args.fresh:
        views.print_forgotten(forget_local_model(score))
    views.print_training(score, dataset)
    platform = _platform(score, aws, args.verbose)
    if args.no_wait:
        result = platform.train(score, dataset, wait=False)
        views.print_job_created(result.job)
        classes = len(dataset.class_counts())
        return views.TrainingRow(score.name, "created", len(dataset.texts), classes, None, f"training job {result.job}")
    result = platform.train(score, dataset)
    views.print_trained(result.location)
    if not is_s3_uri(result.location):  # a model here: report on the validation split training held out
        from pathlib import Path

        from plexus_train.evaluation.run import write_validation_report
        from plexus_train.evaluation.view import print_validation_report

        print_validation_report(write_validation_report(score, Path(result.location), dataset))
    classes = len(dataset.class_counts())
    return views.TrainingRow(score.name, "trained", len(dataset.texts), classes, result.f1, result.location)


def _train_scorecard(args: argparse.Namespace, aws: _Aws) -> int:
    """Every score of the scorecard in turn: the ones of another class are skipped with a note, a failure is
    recorded and the next score goes on; one table at the end, exit 1 if any failed."""
    from plexus_infra.core.errors import PlexusError
    from plexus_train import views
    from plexus_train.container.errors import ContainerError
    from plexus_train.scorecards import TRAINABLE, UntrainableScore, a, find_scorecard

    card = find_scorecard(args.scorecard)
    rows: list[views.TrainingRow] = []
    for entry in card.entries:
        try:
            rows.append(_train(card.score(entry), args, aws))
        except UntrainableScore as skipped:
            views.print_skipped(str(skipped))
            rows.append(views.TrainingRow(entry.name, "skipped", why=a(str(entry.score_class))))
        except (PlexusError, ContainerError) as failure:
            views.print_failure(entry.name, failure)
            rows.append(views.TrainingRow(entry.name, "failed", why=views.first_line(failure)))
    rows += [views.TrainingRow(broken.identity()[0], "failed", why=str(broken)) for broken in card.unreadable]
    views.print_training_table(card.name, rows)
    failed = [row.score for row in rows if row.status == "failed"]
    if failed:
        raise PlexusError(f"{len(failed)} of {len(rows)} scores of {card.name!r} failed: {', '.join(failed)}")
    if not any(row.status == "trained" for row in rows):
        raise PlexusError(f"scorecard {card.name!r} has no {TRAINABLE} score to train")
    return EXIT_OK


def _platform(score: Score, aws: _Aws, verbose: bool = False) -> LocalPlatform | SageMakerPlatform:
    from plexus_infra.core.console import console
    from plexus_train.views import RichProgress

    if score.training.platform == "local":
        from plexus_train.platforms.local import LocalPlatform
        from plexus_train.views import StatusLines

        return LocalPlatform(RichProgress(console(), verbose=verbose), lines=StatusLines(console()))
    return _sagemaker(aws, verbose)


def _sagemaker(aws: _Aws, verbose: bool) -> SageMakerPlatform:
    from plexus_infra.core.console import console
    from plexus_train.platforms.sagemaker import SageMakerPlatform
    from plexus_train.views import StatusLines

    return SageMakerPlatform(aws.clients, aws.outputs, StatusLines(console()), verbose=verbose)


def _cmd_provision(args: argparse.Namespace) -> int:
    from plexus_infra.core.console import console
    from plexus_train import views
    from plexus_train.provision import Provisioner, endpoint_name

    score = _score(args)
    aws = _Aws(args.env)
    provisioner = Provisioner(aws.clients, aws.outputs, views.StatusLines(console()), aws.target.name)
    if args.action == "endpoint":
        score = score.with_deployment(
            type=args.deployment_type,
            memory_mb=args.memory,
            max_concurrency=args.max_concurrency,
            instance_type=args.instance_type,
            min_instances=args.min_instances,
            max_instances=args.max_instances,
            target_invocations=args.target_invocations,
        )
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
    elif args.endpoint_url:
        from plexus_train.endpoint_url import invoke_url

        answers = invoke_url(args.endpoint_url, texts)
    else:
        answers = predict.predict_local(model_dir(score), texts, args.precision)
    rows = [{"text": text, **answer} for text, answer in zip(texts, answers, strict=True)]
    views.print_predictions(rows, "json" if args.json else args.format or "table")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    """Extract the model.tar.gz as SageMaker does and answer /ping and /invocations until Ctrl-C."""
    from plexus_train import serving, views
    from plexus_train.locations import is_s3_uri, keys, s3_uri

    score = _score(args)
    aws = _Aws(args.env)
    location = args.model or s3_uri(aws.outputs.bucket, keys(score).model)
    s3 = aws.clients.s3 if is_s3_uri(location) else None
    with serving.extracted(location, s3) as model_dir:
        serving.serve(model_dir, args.host, args.port, views.print_serving)
    views.print_served()
    return EXIT_OK


COMMANDS = {
    "train": _cmd_train,
    "provision": _cmd_provision,
    "predict": _cmd_predict,
    "serve": _cmd_serve,
    "evaluate": lambda args: args.run(args),  # plexus_train/evaluation/command.py: register_evaluate sets args.run
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, map every expected failure (the container code's too) to one line
    and an exit code."""
    parser = build_parser()
    args = parser.parse_args(with_default_action(sys.argv[1:] if argv is None else argv))
    if getattr(args, "action", None) == "endpoint" and not args.plan and (args.json or args.detailed_exitcode):
        parser.error("--json and --detailed-exitcode apply only with --plan")
    if args.command == "train" and bool(args.attach) == bool(args.scorecard):
        parser.error(
            "give --scorecard (to train) or --attach JOB (to wait for a job), not both"
            if args.attach
            else "the following arguments are required: --scorecard (or --attach JOB)"
        )
    if args.command == "train" and args.attach and args.no_wait:
        parser.error("--attach waits for a job; --no-wait does not go with it")
    from plexus_train.container.errors import ContainerError

    return run_command(lambda: COMMANDS[args.command](args), debug=args.debug, expected=(ContainerError,))
