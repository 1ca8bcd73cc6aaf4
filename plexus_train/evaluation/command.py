"""`plexus evaluate accuracy`: its arguments and the command. A thin shell over `run` (the work) and `view`
(the output); this module imports nothing heavy (no torch, transformers, matplotlib, boto3, rich) until the
command runs, so `plexus --help` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plexus_train.evaluation.predictions import Predictor

DEFAULT_SEED = 42


def register_evaluate(commands: Any) -> None:
    """Add `evaluate accuracy` to plexus's subcommands (`commands`, what add_subparsers returned); the command
    runs as `args.run(args)`."""
    from plexus_train.cli import _add_env, _add_precision, _add_score

    evaluate = commands.add_parser("evaluate", help="measure a trained score on labelled data, with a report")
    kinds = evaluate.add_subparsers(dest="evaluation", metavar="KIND", required=True)
    accuracy = kinds.add_parser(
        "accuracy",
        help="accuracy, Gwet's AC1, precision/recall/F1, confusion matrix and an HTML report",
        description="Runs the trained model on labelled data and writes models/{sc}/{s}/evaluations/{timestamp}/.",
    )
    _add_score(accuracy)
    accuracy.add_argument(
        "--data",
        required=True,
        metavar="NAME|PATH",
        help="labelled data: datasources/NAME.yaml or a .csv/.parquet path",
    )
    accuracy.add_argument(
        "--number-of-samples", type=int, metavar="N", help="a stratified sample of N rows (default: every row)"
    )
    accuracy.add_argument(
        "--random-seed", type=int, default=DEFAULT_SEED, metavar="S", help=f"the sample's seed (default {DEFAULT_SEED})"
    )
    answered = accuracy.add_mutually_exclusive_group()
    answered.add_argument(
        "--endpoint", metavar="NAME", help="invoke this SageMaker endpoint instead of local artifacts"
    )
    answered.add_argument(
        "--endpoint-url", metavar="URL", help="a model served in SageMaker's container contract (URL/invocations)"
    )
    _add_precision(answered)
    accuracy.add_argument("--json-only", action="store_true", help="print one JSON document instead of tables")
    _add_env(accuracy)
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Data (sampled when asked), the model's answers with a progress bar, the files, then tables or JSON."""
    import json

    from plexus_infra.core.exits import EXIT_OK
    from plexus_train import datasources
    from plexus_train.cli import _Aws
    from plexus_train.evaluation import run, view
    from plexus_train.evaluation.document import to_document
    from plexus_train.locations import is_s3_uri, model_dir
    from plexus_train.scorecards import find_score

    score = find_score(args.scorecard, args.score)
    aws = _Aws(args.env)
    source = datasources.for_score(score, args.data)
    text, labels = datasources.columns(score, source)
    s3 = aws.clients.s3 if is_s3_uri(source.location) else None
    dataset = datasources.load(source, text, labels, s3, training=False)
    rows = len(dataset.texts)
    dataset = run.sampled(dataset, args.number_of_samples, args.random_seed)
    sample = None if args.number_of_samples is None else (args.number_of_samples, args.random_seed)
    directory = model_dir(score)
    predictor = _predictor(args, aws, directory)
    with view.EvaluationProgress(len(dataset.texts)) as advance:
        evaluation = run.evaluate(score, predictor, dataset, rows=rows, sample=sample, advance=advance)
    evaluation = run.write(evaluation, directory)
    if args.json_only:
        print(json.dumps(to_document(evaluation), indent=2, ensure_ascii=False))
    else:
        view.print_evaluation(evaluation)
    return EXIT_OK


def _predictor(args: argparse.Namespace, aws: Any, directory: Path) -> Predictor:
    """What answers: --endpoint, --endpoint-url, else the local artifacts."""
    from plexus_train.evaluation import predictions

    if args.endpoint:
        return predictions.endpoint(aws.clients.runtime, args.endpoint)
    if args.endpoint_url:
        return predictions.served(args.endpoint_url)
    return predictions.local(directory, args.precision)
