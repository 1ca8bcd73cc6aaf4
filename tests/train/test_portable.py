"""The ONNX form of a trained classifier (`container/portable.py`): written with the artifacts and checked against
torch there, loaded without torch or transformers, answering as the torch model does, and torch again wherever
the ONNX form cannot serve."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from plexus_train.container import inference, portable
from plexus_train.container.artifacts import LoadedClassifier, load_classifier, save_classifier
from plexus_train.container.config import TrainingConfig
from tests.train.helpers import PLEXUS_PROJECT
from tests.train.test_frozen import TEXTS

MODEL = Path("models") / "test-scorecard-v-1-0" / "ticket-topic"
IDENTITY = {"scorecard": "c", "score": "s"}
# Texts a tokenizer can get wrong: accents, other scripts, emoji, runs of spaces and newlines, capitals, digits.
AWKWARD = [
    "Café déjà vu — naïve coöperation",
    "Привет мир 你好世界 مرحبا",
    "refund 💸💸 now!!!   please\n\n\tthanks",
    "THE LOGIN PAGE 404s at 3:15pm (again)",
    "x",
]


def answers(model, texts: list[str]) -> list[dict]:
    body = json.dumps({"text": texts})
    return json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body), model)))


def assert_same_answers(first: list[dict], second: list[dict]) -> None:
    for one, other in zip(first, second, strict=True):
        assert one["value"] == other["value"]
        assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-5)


@pytest.fixture(scope="module")
def windowed(tiny_model: Path):
    """A classifier trained briefly on Plexus-shaped call transcripts, read as up to 3 windows of 16 tokens."""
    import csv

    from plexus_train.container.trainer import train_classifier

    with (PLEXUS_PROJECT / "data" / "transcripts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:40]
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=1, batch_size=8, max_tokens=16, max_windows=3, seed=5
    )
    return train_classifier([row["Transcription"] for row in rows], [row["Call Intent"] for row in rows], config)


def test_a_trained_model_carries_an_onnx_form_that_matched_torch_and_predictions_load_it(trained: Path) -> None:
    import onnxruntime

    manifest = json.loads((trained / MODEL / "inference" / "portable.json").read_text())
    assert manifest["checked_with_onnxruntime"] == onnxruntime.__version__
    assert (manifest["pad_token_id"], manifest["hidden_size"], manifest["split_special_tokens"]) == (0, 64, False)
    assert isinstance(inference.model_fn(str(trained / MODEL)), portable.PortableClassifier)


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_the_onnx_form_answers_as_the_torch_model_on_texts_of_several_windows(
    windowed, tmp_path, monkeypatch, pooling
) -> None:
    monkeypatch.setattr(windowed.model, "pooling", pooling)  # as a model trained with it: the export checks it too
    directory = save_classifier(
        replace(windowed, config=replace(windowed.config, window_pooling=pooling)), tmp_path, IDENTITY
    )
    texts = [*TEXTS, *AWKWARD]
    onnx, torch_form = inference.model_fn(str(directory)), load_classifier(directory)
    assert isinstance(onnx, portable.PortableClassifier) and onnx.config.window_pooling == pooling
    assert_same_answers(answers(onnx, texts), answers(torch_form, texts))


def test_the_tokenizer_file_alone_gives_the_ids_transformers_gives(tiny_model: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    texts = [*AWKWARD, *TEXTS]
    reference = AutoTokenizer.from_pretrained(str(tiny_model))
    # A file saved while truncating and padding keeps those settings: windows are cut by `windows` instead.
    saved = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    saved.enable_truncation(4)
    saved.enable_padding(length=64)
    saved.save(str(tmp_path / "tokenizer.json"))
    for path in (tiny_model / "tokenizer.json", tmp_path / "tokenizer.json"):
        alone = portable.FileTokenizer(path)
        for special in (True, False):
            expected = reference(texts, add_special_tokens=special, truncation=False)["input_ids"]
            assert alone(texts, add_special_tokens=special)["input_ids"] == expected
        assert alone("x")["input_ids"] == reference("x")["input_ids"]


def test_predicting_from_the_onnx_form_imports_neither_torch_nor_transformers(trained: Path) -> None:
    texts = ["the courier never arrived", "my invoice is wrong again", *AWKWARD]
    program = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from plexus_train.predict import predict_local\n"
        f"answers = predict_local(Path({str(trained / MODEL)!r}), {texts!r})\n"
        "heavy = sorted(name for name in ('torch', 'transformers', 'onnx') if name in sys.modules)\n"
        "print(json.dumps([heavy, answers]))\n"
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    heavy, answered = json.loads(ran.stdout)
    assert heavy == []
    assert_same_answers(answered, answers(load_classifier(trained / MODEL), texts))


@pytest.mark.parametrize(
    ("why", "said"),
    [
        ("answers that differ", "the ONNX form's answers differ from torch's by "),
        ("no onnx package", "OnnxExporterError: Module onnx is not installed!"),
    ],
)
def test_a_form_that_cannot_be_written_or_checked_is_a_warning_and_predictions_load_torch(
    windowed, tmp_path: Path, monkeypatch, capsys, why: str, said: str
) -> None:
    if why == "no onnx package":
        monkeypatch.setitem(sys.modules, "onnx", None)  # a training container without it: the exporter needs it
    else:  # as if the graph or the numpy side computed something else (tracing missed a branch, say)
        pooled = portable.pooled
        monkeypatch.setattr(portable, "pooled", lambda vectors, counts, how: -pooled(vectors, counts, how))
    directory = save_classifier(windowed, tmp_path, IDENTITY)
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: {tmp_path}: no ONNX form for predictions ({said}"), warning
    assert warning.endswith("; they will load torch\n") and warning.count("\n") == 1
    assert not (directory / "inference").exists()
    assert isinstance(inference.model_fn(str(directory)), LoadedClassifier)


def test_without_onnx_inference_only_the_torch_form_is_saved(windowed, tmp_path: Path, capsys) -> None:
    save_classifier(windowed, tmp_path, IDENTITY)
    assert (tmp_path / "inference").is_dir()  # an earlier model's, saved to the same place: it must not answer
    directory = save_classifier(
        replace(windowed, config=replace(windowed.config, onnx_inference=False)), tmp_path, IDENTITY
    )
    assert capsys.readouterr().err == ""
    assert not (directory / "inference").exists()
    assert isinstance(inference.model_fn(str(directory)), LoadedClassifier)


@pytest.mark.parametrize("why", ["no onnxruntime", "an onnxruntime too old", "a later format", "an earlier format"])
def test_where_the_onnx_form_cannot_serve_predictions_load_torch(trained: Path, tmp_path: Path, monkeypatch, why):
    import shutil

    import onnxruntime

    directory = tmp_path / "model"
    shutil.copytree(trained / MODEL, directory)
    if why == "no onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    elif why == "an onnxruntime too old":
        monkeypatch.setattr(onnxruntime, "__version__", "1.17.3")
    else:  # an earlier one (1) lacked what format 2 needs to answer as torch does
        manifest = directory / "inference" / "portable.json"
        version = portable.FORMAT_VERSION + (1 if why == "a later format" else -1)
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": version}))
    assert isinstance(inference.model_fn(str(directory)), LoadedClassifier)


def test_a_tokenizer_that_splits_special_tokens_is_followed_by_the_onnx_form(windowed, tmp_path: Path) -> None:
    """transformers keeps split_special_tokens in tokenizer_config.json, not in tokenizer.json: the manifest
    carries it."""
    from transformers import AutoTokenizer

    windowed.tokenizer.save_pretrained(tmp_path / "splitting")
    splitting = AutoTokenizer.from_pretrained(tmp_path / "splitting", split_special_tokens=True)
    directory = save_classifier(replace(windowed, tokenizer=splitting), tmp_path / "model", IDENTITY)
    texts = ["hello [SEP] refund [MASK] please", "[CLS] the courier [PAD] never arrived"]
    onnx, torch_form = inference.model_fn(str(directory)), load_classifier(directory)
    assert isinstance(onnx, portable.PortableClassifier) and onnx.tokenizer.backend.encode_special_tokens
    assert onnx.tokenizer(texts)["input_ids"] == torch_form.tokenizer(texts)["input_ids"]
    unsplit = portable.FileTokenizer(directory / "encoder" / "tokenizer.json")
    assert unsplit(texts)["input_ids"] != onnx.tokenizer(texts)["input_ids"]  # the setting matters for these texts
    assert_same_answers(answers(onnx, texts), answers(torch_form, texts))


def test_endpoints_install_onnxruntime_but_not_the_exporters_onnx(trained: Path) -> None:
    lines = (trained / MODEL / "code" / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("onnxruntime>=") for line in lines)
    assert not any(line.startswith("onnx>=") for line in lines)


def test_onnxruntime_takes_its_threads_from_omp_num_threads_as_openmp_reads_it() -> None:
    assert [portable.threads(value) for value in ("2", "2,1", "", "many", "-3", "0")] == [2, 2, 0, 0, 0, 0]


def test_a_score_turns_the_onnx_form_off_with_a_boolean(project: Path) -> None:
    from plexus_infra.core.errors import ManifestError
    from plexus_train.scorecards import find_score

    folder = project / "scorecards" / "Call Quality"
    folder.mkdir()
    (folder / "Tone.yaml").write_text("name: Tone\nclass: BERTClassifier\nonnx_inference: false\n")
    assert find_score("Call Quality", "Tone").config.onnx_inference is False
    (folder / "Tone.yaml").write_text("name: Tone\nclass: BERTClassifier\nonnx_inference: sometimes\n")
    with pytest.raises(ManifestError, match=r"Tone.yaml:3:17: onnx_inference: expected boolean"):
        find_score("Call Quality", "Tone")
