"""One evaluation: labelled data (a seeded stratified sample of it, when asked), the model's answers, every
figure, and the files under `models/{sc}/{s}/evaluations/{timestamp}/`; also the report `plexus train` writes
for its validation split."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.errors import PlexusError
from plexus_train.container.dataset import Dataset
from plexus_train.evaluation import metrics
from plexus_train.evaluation.predictions import Answers, Predictor, model_classes, predict_all
from plexus_train.evaluation.sampling import stratified_sample

if TYPE_CHECKING:
    from plexus_train.scorecards import Score

EVALUATIONS = "evaluations"
METRICS, PREDICTIONS, CONFUSION, REPORT = "metrics.json", "predictions.csv", "confusion.png", "report.html"
HISTORY = "training_history.json"
HISTORY_KEYS = ("epoch", "train_loss", "validation_loss", "f1")


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation measured and where it went.

    + model: what answered (`local model models/a/b`, `endpoint NAME`, a URL)
    + rows: the data's rows before sampling; `sample` the (size, seed) drawn, or None for every row
    + split: `validation` for the report of `plexus train`'s validation split, else None
    + directory: where its files are, once written
    """

    scorecard: str
    score: str
    model: str
    dataset: Dataset
    rows: int
    answers: Answers
    figures: metrics.Figures
    created: datetime
    sample: tuple[int, int] | None = None
    split: str | None = None
    directory: Path | None = None

    @property
    def report(self) -> Path:
        """report.html, once the evaluation is written."""
        if self.directory is None:
            raise ValueError("the evaluation is not written yet")
        return self.directory / REPORT

    @property
    def files(self) -> dict[str, str] | None:
        """The evaluation's directory and its four files, once written."""
        if self.directory is None:
            return None
        names = {"metrics": METRICS, "predictions": PREDICTIONS, "confusion": CONFUSION, "report": REPORT}
        return {"directory": str(self.directory), **{key: str(self.directory / name) for key, name in names.items()}}

    @property
    def predicted(self) -> list[str]:
        return [answer["value"] for answer in self.answers]

    def mistakes(self, most: int = 20) -> list[int]:
        """Rows the model got wrong, the most confident first (ties: file order), at most `most`."""
        wrong = [i for i, (t, p) in enumerate(zip(self.dataset.labels, self.predicted, strict=True)) if t != p]
        return sorted(wrong, key=lambda i: -self.answers[i]["confidence"])[:most]


def sampled(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    """`dataset`, or its stratified sample of `size` rows drawn with `seed` (`--number-of-samples`), checked to
    be from 1 to the number of rows."""
    if size is None:
        return dataset
    if not 1 <= size <= len(dataset.texts):
        raise PlexusError(
            f"--number-of-samples {size} is out of range: from 1 to {len(dataset.texts)}, the rows of {dataset.source}"
        )
    chosen = stratified_sample(dataset.labels, size, seed)
    return subset(dataset, chosen)


def subset(dataset: Dataset, rows: list[int]) -> Dataset:
    """The examples of `dataset` at `rows`, in that order."""
    return replace(dataset, texts=tuple(dataset.texts[i] for i in rows), labels=tuple(dataset.labels[i] for i in rows))


def evaluate(
    score: Score,
    predictor: Predictor,
    dataset: Dataset,
    *,
    rows: int | None = None,
    sample: tuple[int, int] | None = None,
    split: str | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> Evaluation:
    """Ask the model about every text of `dataset` and compute the figures (nothing written yet)."""
    answers = predict_all(predictor, list(dataset.texts), advance)
    confidences = [float(answer["confidence"]) for answer in answers]
    predicted = [answer["value"] for answer in answers]
    figures = metrics.figures(model_classes(answers), dataset.labels, predicted, confidences)
    return Evaluation(
        score.scorecard_name,
        score.name,
        predictor.where,
        dataset,
        len(dataset.texts) if rows is None else rows,
        answers,
        figures,
        datetime.now(UTC),
        sample,
        split,
    )


def training_history(model_dir: Path) -> list[dict[str, Any]] | None:
    """The per-epoch history training saved beside the model, or None when there is none to plot (no local
    artifacts, as for an endpoint trained elsewhere, or a file without the curves' fields)."""
    try:
        history = json.loads((model_dir / HISTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fine = isinstance(history, list) and history and all(isinstance(entry, dict) for entry in history)
    return history if fine and all(key in entry for entry in history for key in HISTORY_KEYS) else None


def new_directory(model_dir: Path, now: datetime) -> Path:
    """`model_dir/evaluations/{UTC timestamp}/`, created; `-2`, `-3`, ... when one already has that second."""
    parent = model_dir / EVALUATIONS
    parent.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        directory = parent / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        return directory
    raise PlexusError(f"{parent}: too many evaluations named {stamp}")


def predictions_csv(evaluation: Evaluation) -> str:
    """predictions.csv: text, label, predicted, confidence, probabilities (a JSON object), one row a text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("text", "label", "predicted", "confidence", "probabilities"))
    for text, label, answer in zip(
        evaluation.dataset.texts, evaluation.dataset.labels, evaluation.answers, strict=True
    ):
        probabilities = json.dumps(answer["probabilities"], ensure_ascii=False)
        writer.writerow((text, label, answer["value"], answer["confidence"], probabilities))
    return out.getvalue()


def write(evaluation: Evaluation, model_dir: Path) -> Evaluation:
    """metrics.json, predictions.csv, confusion.png and report.html in a new directory under `model_dir`; the
    evaluation with its `directory`."""
    from plexus_train.evaluation import figures
    from plexus_train.evaluation.document import to_document
    from plexus_train.evaluation.report import report_html

    directory = new_directory(model_dir, evaluation.created)
    evaluation = replace(evaluation, directory=directory)
    result = evaluation.figures
    confusion = figures.confusion_png(result.classes, result.matrix)
    history = training_history(model_dir)
    images = {
        "confusion": confusion,
        "reliability": figures.reliability_png(result.reliability),
        "curves": figures.curves_png(history) if history else None,
    }
    (directory / CONFUSION).write_bytes(confusion)
    (directory / PREDICTIONS).write_text(predictions_csv(evaluation), encoding="utf-8", newline="")
    document = json.dumps(to_document(evaluation), indent=2, ensure_ascii=False) + "\n"
    (directory / METRICS).write_text(document, encoding="utf-8")
    (directory / REPORT).write_text(report_html(evaluation, images, model_dir / HISTORY), encoding="utf-8")
    return evaluation


def write_validation_report(score: Score, model_dir: Path, dataset: Dataset) -> Path:
    """The report of a trained model on its own validation split, the one training held out: the split made
    again from the data it trained on, with the model's saved seed and validation_fraction (`stratified_split`,
    the trainer's classes: sorted labels). Returns the path of report.html."""
    from plexus_train.container.split import stratified_split
    from plexus_train.evaluation import predictions

    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        fraction, seed = config["hyperparameters"]["validation_fraction"], config["hyperparameters"]["seed"]
        labels = config["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        raise PlexusError(f"{model_dir}: no readable config.json with the validation split's settings") from None
    index = {label: i for i, label in enumerate(sorted(labels))}
    if not set(dataset.labels) <= set(index):
        raise PlexusError(f"{model_dir}: the model was not trained on {dataset.source} (other classes)")
    _, validation = stratified_split([index[label] for label in dataset.labels], fraction, seed)
    held_out = subset(dataset, validation)
    evaluation = evaluate(score, predictions.local(model_dir), held_out, rows=len(dataset.texts), split="validation")
    return write(evaluation, model_dir).report
