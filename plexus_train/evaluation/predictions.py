"""The model's answers for an evaluation's texts, from the local artifacts (the inference handlers themselves), a
SageMaker endpoint or a model served at a URL: the same requests and the same answers whichever runs it, asked
batch by batch so progress can be shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plexus_infra.core.errors import PlexusError
from plexus_train.predict import REQUEST_TEXTS, answers_of, predict_endpoint, requests

Answers = list[dict[str, Any]]


@dataclass(frozen=True)
class Predictor:
    """+ where: what answers, for messages and the report (`local model models/a/b`, `endpoint NAME`, a URL)
    + answer: one answer per text, in order, for at most REQUEST_TEXTS texts
    """

    where: str
    answer: Callable[[list[str]], Answers]


def local(model_dir: Path, precision: str = "float32") -> Predictor:
    """The local artifacts, loaded once (a model that cannot be loaded is one line, `model_fn`'s) in `precision`
    (`inference.load_model`), answered by the handlers SageMaker runs, in the requests an endpoint would get."""
    from plexus_train.container import inference

    model = inference.load_model(model_dir, precision)

    def answer(texts: list[str]) -> Answers:
        answers: Answers = []
        for chunk, body in requests(texts):
            reply = inference.output_fn(inference.predict_fn(inference.input_fn(body, inference.JSON), model))
            answers += answers_of(json.loads(reply), chunk, str(model_dir))
        return answers

    return Predictor(f"local model {model_dir}", answer)


def endpoint(runtime: Any, name: str) -> Predictor:
    """A SageMaker endpoint, through a sagemaker-runtime client (`predict.predict_endpoint`)."""
    return Predictor(f"endpoint {name}", lambda texts: predict_endpoint(runtime, name, texts))


def served(url: str) -> Predictor:
    """A model served at `url` in SageMaker's container contract (`endpoint_url.invoke_url`)."""
    from plexus_train.endpoint_url import invocations_url, invoke_url

    return Predictor(invocations_url(url), lambda texts: invoke_url(url, texts))


def predict_all(predictor: Predictor, texts: list[str], advance: Callable[[int], None] = lambda n: None) -> Answers:
    """Every text's answer, REQUEST_TEXTS at a time, calling `advance(n)` after each batch of n; each answer
    checked (`checked`)."""
    answers: Answers = []
    for start in range(0, len(texts), REQUEST_TEXTS):
        chunk = texts[start : start + REQUEST_TEXTS]
        answers += predictor.answer(chunk)
        advance(len(chunk))
    return checked(answers, predictor.where)


def checked(answers: Answers, where: str) -> Answers:
    """`answers`, when each has a string `value`, a numeric `confidence` and `probabilities` over one same set of
    classes that holds the value: what the figures are computed from."""
    classes = None
    for number, answer in enumerate(answers, start=1):
        probabilities = answer.get("probabilities")
        ok = (
            isinstance(answer.get("value"), str)
            and isinstance(answer.get("confidence"), int | float)
            and isinstance(probabilities, dict)
            and answer["value"] in probabilities
        )
        if not ok:
            raise PlexusError(f"{where}: answer {number} is not a {{value, confidence, probabilities}} prediction")
        classes = classes or list(probabilities)
        if set(probabilities) != set(classes):
            raise PlexusError(f"{where}: answer {number} has classes {sorted(probabilities)}, not {sorted(classes)}")
    return answers


def model_classes(answers: Answers) -> list[str]:
    """The model's classes, in its order: the keys of the probabilities every answer carries."""
    return list(answers[0]["probabilities"]) if answers else []
