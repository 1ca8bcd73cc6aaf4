"""Inference handlers in SageMaker's PyTorch serving contract, also used by `plexus predict` locally, so the
endpoint and the command line answer alike.

Request: JSON `{"text": "..."}` (one text) or `{"text": ["...", "..."]}` (a batch). Response: for one text,
`{"value": label, "confidence": p, "probabilities": {label: p}}`; for a batch, a list of those, in order. Texts
become windows exactly as in training (`windows.encode_texts`, the model's own window settings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from plexus_train.container.artifacts import LoadedClassifier
    from plexus_train.container.portable import PortableClassifier

JSON = "application/json"
MAX_BATCH = 1000  # texts per request: a request is held in memory whole, and its answer too
# Tokens per forward pass (padding included): onnxruntime's float32 encoder runs 20 % faster in batches of 2 to 4
# windows of 256 tokens than in 32 (attention's scores then stay in cache; BBC News, docs/training.md), and torch's
# is as fast at 1,024 as at 8,192; short texts still go 32 at a time.
BATCH_TOKENS = 1024


class Request(TypedDict):
    """What input_fn decodes: the texts, and whether they came as a list (then the answer is a list)."""

    texts: list[str]
    batch: bool


class Answer(TypedDict):
    """What predict_fn answers: one prediction per text, and whether the request was a batch."""

    predictions: list[dict[str, Any]]
    batch: bool


def model_fn(model_dir: str) -> LoadedClassifier | PortableClassifier:
    """Load the classifier from an extracted model archive (or a local artifacts directory): its ONNX form when it
    has one this interpreter can run (`portable.usable`: no torch or transformers to import), else the torch
    model. Damaged artifacts raise one DamagedModel, `{model_dir}: damaged model: ...`."""
    return load_model(Path(model_dir))


def load_model(directory: Path, precision: str = "float32") -> LoadedClassifier | PortableClassifier:
    """`model_fn` in `precision`: float32 as it describes; bfloat16 loads the torch form and predicts under
    bfloat16 autocast (onnxruntime has no bfloat16 kernels for x86 CPUs): on a CPU with AMX its forward passes
    are about 3× faster on long texts, probabilities within 0.01 of float32's."""
    from dataclasses import replace

    from plexus_train.container import portable
    from plexus_train.container.artifacts import load_classifier, read_metadata

    if precision == "float32" and portable.usable(directory):
        return portable.load(directory, read_metadata(directory))
    from plexus_train.container.precision import native_bfloat16  # imports torch, which the ONNX form needs not

    model = replace(load_classifier(directory), prediction_precision=precision)
    device = model.model.head.weight.device
    if precision == "bfloat16" and not native_bfloat16(device):
        units = "AMX" if device.type == "cpu" else "bfloat16 units"
        print(
            f"warning: this {device.type.upper()} has no {units}: bfloat16 predictions may be slower", file=sys.stderr
        )
    return model


def input_fn(request_body: str | bytes, content_type: str = JSON) -> Request:
    """Decode one request: `{"text": "..."}` or `{"text": [...]}`, every text non-empty."""
    if content_type.split(";")[0].strip() != JSON:
        raise ValueError(f"unsupported content type {content_type!r}; send {JSON}")
    body = json.loads(request_body)
    text = body.get("text") if isinstance(body, dict) else None
    if isinstance(text, str):
        return {"texts": [_checked(text, "the text")], "batch": False}
    if isinstance(text, list) and text and all(isinstance(item, str) for item in text):
        if len(text) > MAX_BATCH:
            raise ValueError(f"the request holds {len(text)} texts; send at most {MAX_BATCH} at once")
        return {"texts": [_checked(item, f"text {i}") for i, item in enumerate(text)], "batch": True}
    raise ValueError('the request must be a JSON object {"text": "..."} or {"text": ["...", ...]} with string texts')


def _checked(text: str, what: str) -> str:
    if not text.strip():
        raise ValueError(f"{what} is empty or only whitespace; training refuses those, so there is nothing to classify")
    return text


def predict_fn(request: Request, model: LoadedClassifier | PortableClassifier) -> Answer:
    """Classify the request's texts, in order of length so that a batch pads little, up to twice `batch_size`
    texts and BATCH_TOKENS tokens at a time; one {"value", "confidence", "probabilities"} each, in the request's
    order."""
    from plexus_train.container.windows import batched, encode_texts, shortest_first

    texts = request["texts"]
    encoded = encode_texts(model.tokenizer, texts, model.config.windowing)
    order = shortest_first(encoded, range(len(texts)))
    rows: list[list[float]] = [[] for _ in texts]
    for chosen, batch in batched(encoded, order, 2 * model.config.batch_size, model.pad, BATCH_TOKENS):
        for text, row in zip(chosen, model.probabilities(batch), strict=True):
            rows[text] = row
    predictions = []
    for row in rows:
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "value": model.labels[best],
                "confidence": round(row[best], 6),
                "probabilities": {label: round(p, 6) for label, p in zip(model.labels, row, strict=True)},
            }
        )
    return {"predictions": predictions, "batch": request["batch"]}


def output_fn(answer: Answer, accept: str = JSON) -> str:
    """Encode the answer: one object for a one-text request, a list for a batch."""
    if accept.split(";")[0].strip() not in (JSON, "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}; ask for {JSON}")
    predictions = answer["predictions"]
    return json.dumps(predictions if answer["batch"] else predictions[0])
