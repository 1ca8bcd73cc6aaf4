"""Inference handlers on trained artifacts, and `plexus predict` giving the same answers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from plexus_train import inference
from tests.helpers import run_cli
from tests.train.conftest import cli_env

MODEL = Path("models") / "test-scorecard-v-1-0" / "ticket-topic"


def handle(model, text: str) -> dict:
    body = json.dumps({"text": text})
    return json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json"), model)))


def test_handlers_answer_value_confidence_probabilities(trained: Path) -> None:
    model = inference.model_fn(str(trained / MODEL))
    answer = handle(model, "my refund is wrong again")
    assert set(answer) == {"value", "confidence", "probabilities"}
    assert set(answer["probabilities"]) == {"billing", "shipping", "technical"}
    assert answer["value"] == max(answer["probabilities"], key=answer["probabilities"].get)
    assert answer["confidence"] == answer["probabilities"][answer["value"]]
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_handlers_refuse_what_they_cannot_read() -> None:
    with pytest.raises(ValueError, match="unsupported content type"):
        inference.input_fn("hello", "text/plain")
    with pytest.raises(ValueError, match=re.escape('JSON object {"text": "..."}')):
        inference.input_fn('{"body": "hello"}')


def test_predict_cli_gives_the_handlers_answers(trained: Path) -> None:
    texts = ["the courier never arrived", "the login page keeps crashing", "my invoice is wrong again"]
    with (trained / "ask.csv").open("w", newline="") as handle_:
        csv.writer(handle_).writerows([["text"], *[[t] for t in texts]])
    result = run_cli(
        "predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--file", "ask.csv", "--json",
        module="plexus_train", cwd=trained, env=cli_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = inference.model_fn(str(trained / MODEL))
    expected = [{"text": t, **handle(model, t)} for t in texts]
    assert json.loads(result.stdout) == expected


def test_predict_without_a_trained_model_says_to_train(project: Path) -> None:
    result = run_cli(
        "predict", "--scorecard", "test-scorecard-v-1-0", "--score", "ticket-topic", "--text", "hi",
        module="plexus_train", cwd=project, env=cli_env(),
    )  # fmt: skip
    assert result.returncode == 1
    assert "no trained model here" in result.stderr and "run `plexus train` first" in result.stderr
    assert "Traceback" not in result.stderr
