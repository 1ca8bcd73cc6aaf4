"""`plexus evaluate accuracy`: every figure against a hand-computed example, the same figures whichever way the
model answers (local artifacts, a served URL, a SageMaker endpoint), the report's files, and bad input as one
line. The model is the session's tiny trained one (tests/train/conftest.py); nothing downloads."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import struct
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from plexus_train.container.metrics import ClassScore
from plexus_train.evaluation import metrics
from plexus_train.evaluation.sampling import allocation, stratified_sample
from tests.helpers import ROOT

SCORECARD, SCORE = "Test Scorecard v 1.0", "Ticket Topic"
MODEL = Path("models/test-scorecard-v-1-0/ticket-topic")
PNG = b"\x89PNG\r\n\x1a\n"


# --- the figures, by hand ------------------------------------------------------------------------------------


def test_ac1_stays_high_where_kappa_collapses_on_a_skewed_two_by_two() -> None:
    # Truth vs model on 20 items: 18 both "yes", 1 yes/no, 1 no/yes, 0 both "no" (Gwet 2008's paradox case).
    matrix = [[18, 1], [1, 0]]
    # pa = 18/20 = 0.9; pi_yes = (19/20 + 19/20)/2 = 0.95, pi_no = 0.05;
    # pe = 1/(2-1) * (0.95*0.05 + 0.05*0.95) = 0.095; AC1 = (0.9 - 0.095)/(1 - 0.095) = 0.805/0.905 = 161/181.
    assert metrics.gwet_ac1(matrix) == pytest.approx(161 / 181)
    # Cohen: pe = 0.95*0.95 + 0.05*0.05 = 0.905; kappa = (0.9 - 0.905)/(1 - 0.905) = -0.005/0.095 = -1/19.
    assert metrics.cohen_kappa(matrix) == pytest.approx(-1 / 19)
    assert metrics.accuracy(matrix) == pytest.approx(0.9)


TRUTH = list("aaaabbbccc")
PREDICTED = list("aaabbbaccb")


def test_every_figure_of_a_three_class_example_matches_the_hand_computation() -> None:
    result = metrics.figures(["a", "b", "c"], TRUTH, PREDICTED, [0.9] * 10)
    # Rows true, columns predicted: a → 3 a, 1 b; b → 1 a, 2 b; c → 1 b, 2 c.
    assert result.matrix == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    assert result.scores == [ClassScore(4, 4, 3), ClassScore(3, 4, 2), ClassScore(3, 2, 2)]
    precision, recall, f1 = [0.75, 0.5, 1.0], [0.75, 2 / 3, 2 / 3], [0.75, 4 / 7, 0.8]
    assert [s.precision for s in result.scores] == pytest.approx(precision)
    assert [s.recall for s in result.scores] == pytest.approx(recall)
    assert [s.f1 for s in result.scores] == pytest.approx(f1)
    assert result.accuracy == pytest.approx(0.7)
    assert (result.macro.precision, result.macro.recall, result.macro.f1) == pytest.approx(
        (0.75, 25 / 36, (0.75 + 4 / 7 + 0.8) / 3)
    )
    # Weighted by support 4, 3, 3: recall weighted is the accuracy.
    assert (result.weighted.precision, result.weighted.recall, result.weighted.f1) == pytest.approx(
        (0.75, 0.7, (4 * 0.75 + 3 * 4 / 7 + 3 * 0.8) / 10)
    )
    # pi = (0.4, 0.35, 0.25); pe = (0.24 + 0.2275 + 0.1875)/2 = 0.3275; AC1 = 0.3725/0.6725 = 149/269.
    assert result.ac1 == pytest.approx(149 / 269)
    # Cohen: pe = 0.4*0.4 + 0.3*0.4 + 0.3*0.2 = 0.34; kappa = 0.36/0.66 = 6/11.
    assert result.kappa == pytest.approx(6 / 11)
    assert result.unknown == {} and result.examples == 10


def test_a_label_the_model_does_not_know_is_an_error_listed_and_averaged_in() -> None:
    result = metrics.figures(["a", "b"], ["a", "b", "z", "z"], ["a", "b", "a", "b"], [0.6] * 4)
    assert result.classes == ["a", "b", "z"]
    assert result.unknown == {"z": 2}
    assert result.accuracy == 0.5
    assert result.scores[2] == ClassScore(support=2, predicted=0, correct=0)
    # a and b: precision 1/2, recall 1, F1 2/3; z: 0 (never predicted, never right).
    assert result.macro.f1 == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    # q = 3 (model's 2 + the unknown one): pi = (0.375, 0.375, 0.25), pe = (0.234375*2 + 0.1875)/2 = 0.328125.
    assert result.ac1 == pytest.approx((0.5 - 0.328125) / (1 - 0.328125))


def test_a_model_class_absent_from_the_data_and_never_predicted_is_not_averaged() -> None:
    result = metrics.figures(["a", "b", "c"], list("aabb"), list("aabb"), [1.0] * 4)
    assert result.macro.f1 == 1.0 and result.weighted.f1 == 1.0
    assert result.ac1 == 1.0 and result.scores[2] == ClassScore(0, 0, 0)


def test_reliability_bins_and_calibration_error_by_hand() -> None:
    bins = metrics.reliability([0.05, 0.55, 0.58, 0.95, 1.0], [False, True, False, True, True])
    filled = [value for b in bins if b.count for value in (b.low, b.count, b.confidence, b.accuracy)]
    assert filled == pytest.approx([0.0, 1, 0.05, 0.0, 0.5, 2, 0.565, 0.5, 0.9, 2, 0.975, 1.0])
    assert len(bins) == 10 and sum(b.count for b in bins) == 5
    # |0 - 0.05|*1 + |0.5 - 0.565|*2 + |1 - 0.975|*2 over 5 = 0.23/5
    assert metrics.calibration_error(bins) == pytest.approx(0.046)


# --- sampling ------------------------------------------------------------------------------------------------


def test_allocation_keeps_each_class_share_and_sums_to_the_size() -> None:
    assert allocation({"a": 6, "b": 3, "c": 1}, 5) == {"a": 3, "b": 2, "c": 0}
    assert allocation({"a": 80, "b": 20}, 10) == {"a": 8, "b": 2}
    assert sum(allocation({"x": 7, "y": 7, "z": 7}, 11).values()) == 11
    with pytest.raises(ValueError):
        allocation({"a": 2}, 3)


def test_a_stratified_sample_is_seeded_and_proportional() -> None:
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    first = stratified_sample(labels, 20, seed=7)
    assert first == stratified_sample(labels, 20, seed=7)
    assert first != stratified_sample(labels, 20, seed=8)
    assert Counter(labels[i] for i in first) == {"a": 12, "b": 6, "c": 2}
    assert first == sorted(set(first))


def canned(answers: list[tuple[str, float]]) -> Any:
    """A Predictor answering `(value, confidence)` in order, over the classes a and b: for the pure parts only."""
    from plexus_train.evaluation.predictions import Predictor

    queue = list(answers)

    def answer(texts: list[str]) -> list[dict[str, Any]]:
        taken = [queue.pop(0) for _ in texts]
        return [{"value": v, "confidence": c, "probabilities": {"a": c, "b": 1 - c}} for v, c in taken]

    return Predictor("canned", answer)


def test_the_mistakes_shown_are_the_most_confident_first(trained: Path) -> None:
    from plexus_train.container.dataset import Dataset
    from plexus_train.evaluation.run import evaluate
    from plexus_train.scorecards import find_score

    score = find_score(SCORECARD, SCORE, trained / "scorecards")
    dataset = Dataset(tuple("pqrstu"), tuple("aaabbb"), "x.csv", "text", "label")
    answers = [("b", 0.6), ("a", 0.9), ("b", 0.95), ("a", 0.7), ("a", 0.8), ("b", 0.99)]
    evaluation = evaluate(score, canned(answers), dataset)
    assert evaluation.mistakes() == [2, 4, 3, 0]  # wrong: rows 0 (0.6), 2 (0.95), 3 (0.7), 4 (0.8)
    assert evaluation.mistakes(2) == [2, 4]
    assert evaluation.figures.accuracy == pytest.approx(2 / 6)


def test_an_answer_that_is_not_a_prediction_is_one_error() -> None:
    from plexus_infra.core.errors import PlexusError
    from plexus_train.evaluation.predictions import Predictor, predict_all

    broken = Predictor("endpoint e", lambda texts: [{"value": "a", "confidence": 0.5}] * len(texts))
    with pytest.raises(PlexusError, match=r"^endpoint e: answer 1 is not a \{value, confidence, probabilities\}"):
        predict_all(broken, ["x"])
    advanced: list[int] = []
    answers = predict_all(canned([("a", 0.5)] * 40), ["t"] * 40, advanced.append)
    assert len(answers) == 40 and advanced == [32, 8]


# --- the command ---------------------------------------------------------------------------------------------


@pytest.fixture
def workspace(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained project as the working directory (evaluations write under its models/)."""
    work = shutil.copytree(trained, tmp_path / "work")
    monkeypatch.chdir(work)
    return work


def evaluate(plexus, *extra: str) -> Any:
    return plexus("evaluate", "accuracy", "--scorecard", SCORECARD, "--score", SCORE, *extra)


class _Serving(BaseHTTPRequestHandler):
    """SageMaker's inference container contract on a real port, answered by the project's own handlers."""

    model: Any = None

    def do_GET(self) -> None:  # /ping
        self._reply(200 if self.path == "/ping" else 404, b"{}")

    def do_POST(self) -> None:
        from plexus_train.container import inference

        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/invocations" or self.headers["Content-Type"] != "application/json":
            return self._reply(415, b'{"error": "send application/json to /invocations"}')
        request = inference.input_fn(body, self.headers["Content-Type"])
        self._reply(200, inference.output_fn(inference.predict_fn(request, self.model)).encode())

    def _reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def served(workspace: Path) -> Iterator[str]:
    """The trained model served on 127.0.0.1 (a free port) in a thread: its base URL."""
    from plexus_train.container import inference

    handler = type("Handler", (_Serving,), {"model": inference.model_fn(str(workspace / MODEL))})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def real_model_endpoint(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> list[dict[str, Any]]:
    """InvokeEndpoint answered by the real model: moto's sagemaker-runtime returns canned output, not a model's,
    so a before-send hook on the runtime client the command makes answers each request with what the inference
    handlers say for its very body (the same texts). Every other call still goes to the sandbox. The requests
    seen are returned (as they fill)."""
    import io

    from botocore.awsrequest import AWSResponse

    from plexus_infra.core.aws import Clients
    from plexus_train.container import inference

    model = inference.model_fn(str(model_dir))
    seen: list[dict[str, Any]] = []

    class Body(io.BytesIO):
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.getvalue()

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen.append(
            {"url": request.url, "content_type": request.headers["Content-Type"].decode(), "body": request.body}
        )
        reply = inference.output_fn(inference.predict_fn(inference.input_fn(request.body), model)).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(reply))}
        return AWSResponse(request.url, 200, headers, Body(reply))

    original = Clients._new_client

    def hooked(self: Clients, service: str) -> Any:
        client = original(self, service)
        if service == "sagemaker-runtime":
            client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", answer)
        return client

    monkeypatch.setattr(Clients, "_new_client", hooked)
    return seen


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The figures of a JSON document, without what differs by run (what answered, when, where it was written)."""
    return {key: value for key, value in document.items() if key not in ("model", "created", "files")}


def test_local_served_url_and_endpoint_give_the_same_figures(
    sandbox, workspace: Path, served: str, plexus, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = real_model_endpoint(monkeypatch, workspace / MODEL)
    runs = {
        "local": evaluate(plexus, "--data", "tickets", "--json-only"),
        "url": evaluate(plexus, "--data", "tickets", "--json-only", "--endpoint-url", served),
        "endpoint": evaluate(plexus, "--data", "tickets", "--json-only", "--endpoint", "ticket-topic"),
    }
    assert all(ran.code == 0 for ran in runs.values()), {name: ran.err for name, ran in runs.items()}
    documents = {name: json.loads(ran.out) for name, ran in runs.items()}
    assert comparable(documents["local"]) == comparable(documents["url"]) == comparable(documents["endpoint"])
    assert documents["url"]["model"] == f"{served}/invocations"
    assert documents["endpoint"]["model"] == "endpoint ticket-topic"
    # 240 texts: 8 requests of 32 each way, to the endpoint named and with the JSON contract.
    assert len(seen) == 8 and all(s["content_type"] == "application/json" for s in seen)
    assert all("/endpoints/ticket-topic/invocations" in s["url"] for s in seen)
    assert [len(json.loads(s["body"])["text"]) for s in seen] == [32] * 7 + [16]
    predictions = [(Path(doc["files"]["predictions"])).read_text(encoding="utf-8") for doc in documents.values()]
    assert predictions[0] == predictions[1] == predictions[2]
    local = documents["local"]
    assert local["format_version"] == "1.0" and local["examples"] == 240
    assert [c["label"] for c in local["classes"]] == ["billing", "shipping", "technical"]
    assert sum(map(sum, local["confusion_matrix"]["counts"])) == 240


def test_the_figures_are_those_of_predictions_csv(workspace: Path, plexus) -> None:
    ran = evaluate(plexus, "--data", "tickets", "--json-only")
    document = json.loads(ran.out)
    with open(document["files"]["predictions"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["text", "label", "predicted", "confidence", "probabilities"]
    truth, predicted = [r["label"] for r in rows], [r["predicted"] for r in rows]
    assert document["accuracy"] == sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(rows)
    probabilities = json.loads(rows[0]["probabilities"])
    assert set(probabilities) == {"billing", "shipping", "technical"}
    assert float(rows[0]["confidence"]) == max(probabilities.values())
    assert json.loads(Path(document["files"]["metrics"]).read_text(encoding="utf-8")) == document
    assert set(document) == {
        *("format_version", "command", "scorecard", "score", "model", "created", "data", "examples", "accuracy"),
        *("gwet_ac1", "cohen_kappa", "macro", "weighted", "classes", "confusion_matrix", "unknown_labels"),
        *("calibration", "files"),
    }


def test_the_console_shows_every_figure_and_the_report_path(workspace: Path, plexus) -> None:
    argv = ("--scorecard-name", SCORECARD, "--score-name", SCORE, "--data", "tickets", "--number-of-samples", "30")
    ran = plexus("evaluate", "accuracy", *argv, "--random-seed", "3")
    assert ran.code == 0, ran.err
    for words in ("examples", "accuracy", "Gwet's AC1", "macro", "weighted", "per class", "support", "confusion"):
        assert words in ran.out
    assert "a stratified sample (seed 3) of 240 rows" in ran.out
    report = ran.out.strip().splitlines()[-1]
    assert report.startswith("report: models/test-scorecard-v-1-0/ticket-topic/evaluations/")
    assert Path(report.removeprefix("report: ")).is_file()


def test_a_sample_is_stratified_and_the_same_for_the_same_seed(workspace: Path, plexus) -> None:
    runs = [
        evaluate(plexus, "--data", "tickets", "--number-of-samples", "30", "--json-only", *seed)
        for seed in ([], [], ["--random-seed", "9"])
    ]
    first, again, other = (json.loads(ran.out) for ran in runs)
    assert first["examples"] == 30 and first["data"]["sample"] == {"number_of_samples": 30, "random_seed": 42}
    assert first["data"]["rows"] == 240
    with open(first["files"]["predictions"], newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    with open(other["files"]["predictions"], newline="", encoding="utf-8") as handle:
        other_texts = [row["text"] for row in csv.DictReader(handle)]
    assert comparable(first) == comparable(again) and texts != other_texts
    with (workspace / "datasources" / "tickets.csv").open(newline="", encoding="utf-8") as handle:
        data = list(csv.DictReader(handle))
    shares = Counter(row["topic"] for row in data)
    expected = allocation(dict(shares), 30)
    assert {c["label"]: c["support"] for c in first["classes"]} == expected


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which follows the 8-byte signature."""
    assert png[:8] == PNG and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(values)
        for key in ("href", "src"):
            if key in values and tag != "img":
                self.links.append(values[key])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_report_is_one_page_that_embeds_its_images_and_names_every_class(workspace: Path, plexus) -> None:
    from plexus_train.evaluation.figures import confusion_size

    data = workspace / "unknown.csv"
    rows = (workspace / "datasources" / "tickets.csv").read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join([*rows[:40], '"Where is my <b>refund</b>?",refunds']) + "\n", encoding="utf-8")
    ran = evaluate(plexus, "--data", str(data), "--json-only")
    document = json.loads(ran.out)
    directory = Path(document["files"]["directory"])
    assert sorted(p.name for p in directory.iterdir()) == [
        "confusion.png",
        "metrics.json",
        "predictions.csv",
        "report.html",
    ]
    page = _Page()
    page.feed((directory / "report.html").read_text(encoding="utf-8"))
    page.close()
    text = " ".join(page.text)
    assert len(page.images) == 3 and page.links == []  # confusion, curves, reliability; nothing fetched
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == PNG
    for label in ("billing", "shipping", "technical", "refunds"):
        assert label in text
    assert "Where is my <b>refund</b>?" in text  # a text is shown as text, never as markup
    assert "Gwet's AC1" in text and "most confident mistakes" in text
    confusion = (directory / "confusion.png").read_bytes()
    assert png_size(confusion) == confusion_size(4)
    assert any(base64.b64decode(i["src"].split(",", 1)[1]) == confusion for i in page.images)


def test_labels_unknown_to_the_model_are_errors_and_listed(workspace: Path, plexus) -> None:
    data = workspace / "unknown.csv"
    data.write_text("text,topic\nmy refund is late,refunds\nthe parcel never arrived,shipping\n", encoding="utf-8")
    ran = evaluate(plexus, "--data", str(data))
    assert ran.code == 0, ran.err
    assert "labels the model does not know, counted as errors: 'refunds' (1 rows)" in ran.out
    document = json.loads(evaluate(plexus, "--data", str(data), "--json-only").out)
    assert document["unknown_labels"] == {"refunds": 1}
    refunds = next(c for c in document["classes"] if c["label"] == "refunds")
    assert refunds == {**refunds, "known": False, "support": 1, "correct": 0, "recall": 0.0}
    assert document["accuracy"] <= 0.5


def test_the_validation_report_of_training_matches_the_best_epoch(workspace: Path) -> None:
    from plexus_train import datasources
    from plexus_train.evaluation.run import write_validation_report
    from plexus_train.scorecards import find_score

    score = find_score(SCORECARD, SCORE)
    dataset = datasources.load(datasources.resolve("tickets"), "text", "topic")
    report = write_validation_report(score, MODEL, dataset)
    document = json.loads((report.parent / "metrics.json").read_text(encoding="utf-8"))
    best = json.loads((MODEL / "config.json").read_text(encoding="utf-8"))["metrics"]
    assert document["data"]["split"] == "validation" and document["data"]["rows"] == 240
    assert document["examples"] == 48  # 20% of each class: 16 + 16 + 16 of 80 each
    assert document["accuracy"] == pytest.approx(best["accuracy"])
    assert document["macro"]["f1"] == pytest.approx(best["f1"])
    assert "validation split training held out" in report.read_text(encoding="utf-8")


# --- bad input: one line, exit 1 -----------------------------------------------------------------------------


def one_line_failure(ran: Any) -> str:
    assert ran.code == 1, ran.out
    assert ran.out == "" and "Traceback" not in ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "no column 'text'"),
        ("text,topic\n", "no data rows"),
        ("text,topic\nmy refund is late,\nthe parcel never arrived,\n", "column 'topic' is empty in 2 row(s) (2, 3)"),
        ("text,other\nmy refund is late,x\n", "no column 'topic'; the columns are: text, other"),
    ],
    ids=["empty file", "header only", "unlabeled", "missing column"],
)
def test_bad_data_is_one_line(workspace: Path, plexus, content: str, says: str) -> None:
    (workspace / "bad.csv").write_text(content, encoding="utf-8")
    assert says in one_line_failure(evaluate(plexus, "--data", "bad.csv"))


def test_a_model_that_cannot_be_loaded_is_one_line(workspace: Path, plexus) -> None:
    (workspace / MODEL / "config.json").write_text("{not json", encoding="utf-8")
    line = one_line_failure(evaluate(plexus, "--data", "tickets"))
    assert line.startswith(f"error: {MODEL}: damaged model: config.json is not readable JSON")
    shutil.rmtree(workspace / MODEL)
    assert "no trained model here" in one_line_failure(evaluate(plexus, "--data", "tickets"))


@pytest.mark.parametrize("size", ["0", "241", "-3"])
def test_a_number_of_samples_out_of_range_is_one_line(workspace: Path, plexus, size: str) -> None:
    line = one_line_failure(evaluate(plexus, "--data", "tickets", "--number-of-samples", size))
    assert line == f"error: --number-of-samples {size} is out of range: from 1 to 240, the rows of " + str(
        workspace / "datasources" / "tickets.csv"
    )


def test_an_unreachable_url_is_one_line_naming_it(workspace: Path, plexus) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = one_line_failure(evaluate(plexus, "--data", "tickets", "--endpoint-url", f"http://127.0.0.1:{port}"))
    assert line.startswith(f"error: http://127.0.0.1:{port}/invocations: cannot connect (")


def test_a_url_that_answers_an_error_is_one_line(workspace: Path, served: str, plexus) -> None:
    from plexus_infra.core.errors import PlexusError
    from plexus_train.endpoint_url import invoke_url

    with pytest.raises(PlexusError, match=r"/nowhere/invocations answered HTTP 415"):
        invoke_url(f"{served}/nowhere", ["a text"])
    assert invoke_url(served, ["the parcel never arrived"])[0]["value"] in {"billing", "shipping", "technical"}


def test_the_command_module_imports_nothing_heavy() -> None:
    probe = (
        "import argparse, sys\n"
        "from plexus_train.evaluation.command import register_evaluate\n"
        "register_evaluate(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'boto3', 'rich') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
