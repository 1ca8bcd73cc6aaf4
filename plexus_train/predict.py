"""Predictions for a score: from the local artifacts through the inference handlers themselves, or from a
SageMaker endpoint with the same JSON contract, so both answer in the same shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_infra.core.aws import call
from plexus_infra.core.errors import PlexusError
from plexus_train.container.dataset import read_csv, shown_rows

if TYPE_CHECKING:
    from plexus_train.scorecards import Score


def text_column(score: Score, model_dir: Path) -> str:
    """The column `predict --file` reads: the one the model was trained on (its config.json), else the one
    training would read now (`datasources.columns`: the score's, else its data source's, else `text`)."""
    from plexus_train import datasources

    try:
        trained_on = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["hyperparameters"]
        if isinstance(trained_on.get("text_column"), str) and trained_on["text_column"]:
            return trained_on["text_column"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no readable model here: predicting will say so; until then, use the score's rule
    try:
        source = datasources.for_score(score)
    except PlexusError:  # no data, or data only the Plexus service has: the score's own rule still holds
        source = None
    return datasources.columns(score, source)[0]


def check_text(text: str) -> str:
    """`text` (the `--text` value), unless it is empty or only whitespace: training refuses those, so a
    prediction for one would mean nothing.

    Example: `check_text(" ")` raises `PlexusError("--text is only whitespace; give a text to classify")`
    """
    if not text.strip():
        raise PlexusError(f"--text is {_blank(text)}; give a text to classify")
    return text


def texts_from_csv(path: Path, column: str) -> list[str]:
    """The `column` values of a CSV file, in order. A row whose text is empty, only whitespace or missing is an
    error naming its row number (the file's line: 1 is the header), as training's data check does."""
    if not path.is_file():
        raise PlexusError(f"{path}: no such file")
    columns, rows = read_csv(path.read_bytes(), str(path))
    if column not in columns:
        raise PlexusError(f"{path}: no column {column!r}; the columns are: {', '.join(columns) or 'none'}")
    texts = [row[column] or "" for row in rows]
    blank = [number for number, text in enumerate(texts, start=2) if not text.strip()]
    if blank:
        where = f"row {blank[0]}" if len(blank) == 1 else f"{len(blank)} rows (rows {shown_rows(blank)})"
        raise PlexusError(f"{path}: column {column!r} is empty or only whitespace in {where}; every row needs a text")
    return texts


def _blank(text: str) -> str:
    return "only whitespace" if text else "empty"


REQUEST_TEXTS = 32  # texts per request: well inside SageMaker's payload limits (4 MB serverless, 6 MB realtime)


def requests(texts: list[str], size: int = REQUEST_TEXTS) -> list[tuple[list[str], bytes]]:
    """The request bodies for `texts`, each with the texts it carries: `{"text": "..."}` for a single text,
    `{"text": [...]}` batches of up to `size` otherwise (the handlers answer a list for a list)."""
    if len(texts) == 1:
        return [(texts, json.dumps({"text": texts[0]}).encode("utf-8"))]
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    return [(chunk, json.dumps({"text": chunk}).encode("utf-8")) for chunk in chunks]


def answers_of(reply: Any, texts: list[str], where: str) -> list[dict[str, Any]]:
    """A decoded reply as one answer per text: a list for a batch request, one object for a single text."""
    answers = reply if isinstance(reply, list) else [reply]
    if len(answers) != len(texts) or not all(isinstance(answer, dict) for answer in answers):
        raise PlexusError(f"{where} answered {len(answers)} predictions for {len(texts)} texts")
    return answers


def predict_local(model_dir: Path, texts: list[str], precision: str = "float32") -> list[dict[str, Any]]:
    """Classify with the local artifacts via model_fn/input_fn/predict_fn/output_fn, in requests as an endpoint
    gets them, each as large as the handlers take (no payload limit here, and a large request batches texts of
    like length better); in `precision` (`inference.load_model`)."""
    from plexus_train.container import inference

    model = inference.load_model(model_dir, precision)
    answers = []
    for chunk, body in requests(texts, inference.MAX_BATCH):
        reply = inference.output_fn(inference.predict_fn(inference.input_fn(body, inference.JSON), model))
        answers += answers_of(json.loads(reply), chunk, str(model_dir))
    return answers


def predict_endpoint(runtime: Any, endpoint: str, texts: list[str]) -> list[dict[str, Any]]:
    """Classify by invoking a SageMaker endpoint (a sagemaker-runtime client), in batches."""
    answers = []
    for chunk, body in requests(texts):
        reply = call(
            runtime.invoke_endpoint,
            f"endpoint {endpoint}",
            EndpointName=endpoint,
            ContentType="application/json",
            Accept="application/json",
            Body=body,
        )
        raw = reply["Body"].read()
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise PlexusError(f"endpoint {endpoint} answered with something other than JSON: {raw[:80]!r}") from None
        answers += answers_of(decoded, chunk, f"endpoint {endpoint}")
    return answers
