"""Inference handlers in SageMaker's PyTorch serving contract, also used by `plexus predict` locally, so the
endpoint and the command line answer alike.

Request: JSON `{"text": "..."}`. Response: JSON `{"value": label, "confidence": p, "probabilities": {label: p}}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plexus_train.container.artifacts import LoadedClassifier

JSON = "application/json"


def model_fn(model_dir: str) -> LoadedClassifier:
    """Load the classifier from an extracted model archive (or a local artifacts directory); damaged artifacts
    raise one DamagedModel, `{model_dir}: damaged model: ...`."""
    from plexus_train.container.artifacts import load_classifier

    return load_classifier(Path(model_dir))


def input_fn(request_body: str | bytes, content_type: str = JSON) -> list[str]:
    """Decode one request into the texts to classify."""
    if content_type.split(";")[0].strip() != JSON:
        raise ValueError(f"unsupported content type {content_type!r}; send {JSON}")
    body = json.loads(request_body)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ValueError('the request must be a JSON object {"text": "..."} with a string text')
    if not text.strip():
        raise ValueError(
            "the text is empty or only whitespace; training refuses those, so there is nothing to classify"
        )
    return [text]


def predict_fn(texts: list[str], model: LoadedClassifier) -> list[dict[str, Any]]:
    """Classify `texts`; one {"value", "confidence", "probabilities"} per text."""
    import torch

    from plexus_train.container.model import tokenize

    with torch.no_grad():
        batch = tokenize(model.tokenizer, texts, model.config.max_tokens)
        probabilities = torch.softmax(model.model(batch["input_ids"], batch["attention_mask"]), dim=-1)
    predictions = []
    for row in probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "value": model.labels[best],
                "confidence": round(row[best], 6),
                "probabilities": {label: round(p, 6) for label, p in zip(model.labels, row, strict=True)},
            }
        )
    return predictions


def output_fn(predictions: list[dict[str, Any]], accept: str = JSON) -> str:
    """Encode the prediction of a single-text request (input_fn always gives exactly one text)."""
    if accept.split(";")[0].strip() not in (JSON, "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}; ask for {JSON}")
    return json.dumps(predictions[0])
