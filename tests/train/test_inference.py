"""Inference handlers on trained artifacts, and `plexus predict` giving the same answers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from plexus_train.container import inference
from tests.train.helpers import plexus_cli

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
    result = plexus_cli(
        "predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--file", "ask.csv", "--json",
        cwd=trained,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = inference.model_fn(str(trained / MODEL))
    expected = [{"text": t, **handle(model, t)} for t in texts]
    assert json.loads(result.stdout) == expected


def test_predict_without_a_trained_model_says_to_train(project: Path) -> None:
    result = plexus_cli(
        "predict", "--scorecard", "test-scorecard-v-1-0", "--score", "ticket-topic", "--text", "hi", cwd=project,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no trained model here" in result.stderr and "run `plexus train` first" in result.stderr
    assert "Traceback" not in result.stderr


def _damage_truncated_config(model: Path) -> None:
    text = (model / "config.json").read_text()
    (model / "config.json").write_text(text[: len(text) // 2])


def _damage_missing_encoder(model: Path) -> None:
    import shutil

    shutil.rmtree(model / "encoder")


def _damage_corrupt_weights(model: Path) -> None:
    (model / "model.pt").write_bytes((model / "model.pt").read_bytes()[:1000])


def _damage_labels_not_matching_weights(model: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    config["labels"].append("returns")
    (model / "config.json").write_text(json.dumps(config))


def _damage_tokenizer_files_missing(model: Path) -> None:
    for path in (model / "encoder").iterdir():
        if path.name.startswith(("tokenizer", "vocab", "special_tokens")):
            path.unlink()


def _damage_corrupt_graph(model: Path) -> None:
    graph = model / "inference" / "encoder.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])


def _damage_truncated_head(model: Path) -> None:
    head = model / "inference" / "head.npz"
    head.write_bytes(head.read_bytes()[:200])


def _damage_head_of_other_classes(model: Path) -> None:
    import numpy

    numpy.savez(model / "inference" / "head.npz", weight=numpy.zeros((2, 64)), bias=numpy.zeros(2))


def _damage_corrupt_tokenizer_file(model: Path) -> None:
    (model / "encoder" / "tokenizer.json").write_text('{"model": ')


def _damage_manifest_unreadable(model: Path) -> None:
    (model / "inference" / "portable.json").write_text("[]")


# The torch form is what loads without an ONNX form (onnx_inference: false, or no onnxruntime); the ONNX form's
# own parts are read only when it is there.
TORCH, ONNX = "torch", "onnx"


@pytest.mark.parametrize(
    ("damage", "what", "form"),
    [
        (_damage_truncated_config, "config.json is not readable JSON", ONNX),
        (_damage_truncated_config, "config.json is not readable JSON", TORCH),
        (_damage_missing_encoder, "encoder/ is missing", TORCH),
        (_damage_corrupt_weights, "model.pt cannot be read", TORCH),
        (_damage_labels_not_matching_weights, "the weights in model.pt do not match the labels", TORCH),
        (_damage_tokenizer_files_missing, "encoder/: the tokenizer has 5 tokens", TORCH),
        (_damage_missing_encoder, "encoder/tokenizer.json cannot be loaded", ONNX),
        (_damage_corrupt_tokenizer_file, "encoder/tokenizer.json cannot be loaded", ONNX),
        (_damage_corrupt_graph, "inference/encoder.onnx cannot be loaded", ONNX),
        (_damage_truncated_head, "inference/head.npz cannot be loaded", ONNX),
        (_damage_head_of_other_classes, "inference/head.npz cannot be loaded (a head of shape (2, 64) for 3", ONNX),
        (_damage_labels_not_matching_weights, "inference/head.npz cannot be loaded (a head of shape (3, 64)", ONNX),
        (_damage_manifest_unreadable, "inference/portable.json cannot be loaded", ONNX),
    ],
)
def test_damaged_artifacts_are_one_error_line_in_predict_and_a_clear_error_in_model_fn(
    trained: Path, tmp_path: Path, monkeypatch, plexus, damage, what: str, form: str
) -> None:
    import shutil

    from plexus_train.container.errors import ContainerError

    work = tmp_path / "project"
    shutil.copytree(trained, work)
    if form == TORCH:
        shutil.rmtree(work / MODEL / "inference")
    damage(work / MODEL)
    monkeypatch.chdir(work)
    ran = plexus("predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--text", "refund")
    code, err = ran.code, ran.err
    assert code == 1
    assert err.startswith(f"error: {MODEL}: damaged model: {what}") and err.count("\n") == 1, err
    with pytest.raises(ContainerError, match=f"damaged model: {re.escape(what)}"):
        inference.model_fn(str(work / MODEL))


def test_predict_file_reads_the_column_the_model_was_trained_on(trained: Path, tmp_path: Path, monkeypatch, plexus):
    """The model's config.json names its text column; the score and data source need not say it again."""
    import shutil

    work = tmp_path / "project"
    shutil.copytree(trained, work)
    config_path = work / MODEL / "config.json"
    config = json.loads(config_path.read_text())
    config["hyperparameters"]["text_column"] = "body"
    config_path.write_text(json.dumps(config))
    with (work / "ask.csv").open("w", newline="") as handle_:
        csv.writer(handle_).writerows([["id", "body"], ["1", "the courier never arrived"]])
    monkeypatch.chdir(work)
    argv = ["predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--file", "ask.csv", "--json"]
    ran = plexus(*argv)
    assert ran.code == 0, ran.err
    rows = json.loads(ran.out)
    assert [row["text"] for row in rows] == ["the courier never arrived"]


def test_predict_file_without_a_local_model_uses_trainings_column_rule(project: Path) -> None:
    from plexus_train import predict
    from plexus_train.scorecards import find_score

    (project / "datasources" / "tickets.yaml").write_text("path: tickets.csv\ntext_column: body\n")
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    assert predict.text_column(score, project / "models" / "nowhere") == "body"


def test_output_fn_answers_one_object_for_one_text_and_a_list_for_a_batch() -> None:
    answer = {"value": "a", "confidence": 1.0, "probabilities": {"a": 1.0}}
    assert json.loads(inference.output_fn({"predictions": [answer], "batch": False})) == answer
    assert json.loads(inference.output_fn({"predictions": [answer], "batch": True})) == [answer]


@pytest.mark.parametrize(("text", "shown"), [("", "empty"), (" \t\n", "only whitespace")])
def test_predict_refuses_an_empty_text_as_training_does(trained: Path, monkeypatch, plexus, text, shown) -> None:
    monkeypatch.chdir(trained)
    ran = plexus("predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--text", text)
    assert ran.code == 1
    assert (ran.out, ran.err) == ("", f"error: --text is {shown}; give a text to classify\n")


def test_predict_file_refuses_blank_rows_naming_them(trained: Path, tmp_path: Path, monkeypatch, plexus) -> None:
    monkeypatch.chdir(trained)
    ask = tmp_path / "ask.csv"
    argv = ["predict", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--file", str(ask)]
    ask.write_text("text\nthe courier never arrived\n   \n")
    ran = plexus(*argv)
    assert ran.code == 1
    assert ran.err == f"error: {ask}: column 'text' is empty or only whitespace in row 3; every row needs a text\n"
    ask.write_text('text\n""\nfine\n" "\n')
    ran = plexus(*argv)
    assert ran.code == 1
    assert "in 2 rows (rows 2, 4); every row needs a text" in ran.err


def test_the_handlers_refuse_an_empty_text_too() -> None:
    with pytest.raises(ValueError, match="empty or only whitespace"):
        inference.input_fn('{"text": "  "}')


def test_a_batch_request_answers_a_list_in_order_equal_to_one_request_per_text(trained: Path) -> None:
    model = inference.model_fn(str(trained / MODEL))
    sentence = "the courier never arrived my invoice is wrong again the login page keeps crashing"
    words = sentence.split(" ")
    # Longest first, over several batches: the handler batches by length and must answer in the request's order.
    texts = [" ".join(words[: len(words) - i % len(words)]) + f" {i}" for i in range(70)]
    body = json.dumps({"text": texts})
    batch = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body), model)))
    assert isinstance(batch, list) and len(batch) == len(texts) > 2 * model.config.batch_size
    for answer, text in zip(batch, texts, strict=True):
        single = handle(model, text)
        assert answer["value"] == single["value"]
        assert answer["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"text": []}', "with string texts"),
        ('{"text": ["fine", 3]}', "with string texts"),
        ('{"text": ["fine", "  "]}', "text 1 is empty or only whitespace"),
    ],
)
def test_a_batch_with_nothing_to_classify_is_refused_naming_the_text(body: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        inference.input_fn(body)


def test_predict_formats_table_json_and_yaml_give_the_same_answers(trained: Path, monkeypatch, plexus) -> None:
    import yaml

    monkeypatch.chdir(trained)
    argv = ["predict", "--scorecard-name", "Test Scorecard v 1.0", "--score-name", "Ticket Topic"]
    argv += ["--text", "the courier never arrived"]
    as_json = plexus(*argv, "--format", "json")
    as_yaml = plexus(*argv, "--format", "yaml")
    as_table = plexus(*argv)
    assert as_json.code == as_yaml.code == as_table.code == 0, as_json.err + as_yaml.err + as_table.err
    assert json.loads(as_json.out) == yaml.safe_load(as_yaml.out) == json.loads(plexus(*argv, "--json").out)
    value = json.loads(as_json.out)[0]["value"]
    assert value in as_table.out and "confidence" in as_table.out
    both = plexus_cli(*argv, "--json", "--format", "yaml", cwd=trained)
    assert both.returncode == 1 and "argument --format: not allowed with argument --json" in both.stderr
