"""Training's precision (`container/precision.py`): bfloat16 autocast only where the hardware multiplies it, the
weights kept float32, and the same training for it as float32 within bfloat16's rounding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from plexus_train.container.config import TrainingConfig

TEXTS = ["my invoice is wrong", "the parcel never arrived", "refund the double charge", "where is my package"] * 5
LABELS = ["billing", "shipping"] * 10


@pytest.mark.parametrize("amx", [True, False])
def test_auto_is_bfloat16_only_on_a_cpu_with_amx(monkeypatch: pytest.MonkeyPatch, amx: bool) -> None:
    import torch

    from plexus_train.container.precision import resolve

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert resolve("auto", cpu) == (torch.bfloat16 if amx else torch.float32)
    assert resolve("float32", cpu) == torch.float32 and resolve("bfloat16", cpu) == torch.bfloat16


@pytest.mark.parametrize(("capability", "native"), [((8, 0), True), ((9, 0), True), ((7, 5), False), ((7, 0), False)])
def test_auto_is_bfloat16_only_on_a_gpu_that_has_it(monkeypatch: pytest.MonkeyPatch, capability, native) -> None:
    """Ampere (8.x: A10G, A100) and later multiply bfloat16; a T4 (7.5) or V100 (7.0) would emulate it, slower."""
    import torch

    from plexus_train.container.precision import resolve

    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: asked.append(device) or capability)
    assert resolve("auto", torch.device("cuda", 1)) == (torch.bfloat16 if native else torch.float32)
    assert asked == [torch.device("cuda", 1)]  # the run's own GPU, not the current one


def test_the_score_schema_offers_the_precisions_training_knows() -> None:
    from plexus_train.container.precision import PRECISIONS
    from plexus_train.schemas import schema_for

    assert tuple(schema_for("score")["$defs"]["score"]["properties"]["precision"]["enum"]) == PRECISIONS


def test_an_unknown_precision_is_refused() -> None:
    import torch

    from plexus_train.container.precision import resolve

    with pytest.raises(ValueError, match="precision 'half': expected one of auto, bfloat16, float32"):
        resolve("half", torch.device("cpu"))


@contextmanager
def linear_output_dtypes() -> Iterator[set]:
    """Within: the dtype of every linear layer's output, gathered into the set yielded."""
    import torch

    seen: set = set()

    def record(module, args, output) -> None:
        if isinstance(module, torch.nn.Linear):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        yield seen
    finally:
        handle.remove()


def trained_with_dtypes(config: TrainingConfig):
    from plexus_train.container.trainer import train_classifier

    with linear_output_dtypes() as seen:
        return train_classifier(TEXTS, LABELS, config), seen


def test_bfloat16_multiplies_in_bfloat16_keeps_float32_weights_and_trains_as_float32_does(
    tiny_model: Path, tmp_path: Path
) -> None:
    import torch

    from plexus_train.container.artifacts import save_classifier

    config = TrainingConfig(embeddings_model=str(tiny_model), epochs=2, batch_size=4, trainable_layers=1)
    full, full_dtypes = trained_with_dtypes(replace(config, precision="float32"))
    half, half_dtypes = trained_with_dtypes(replace(config, precision="bfloat16"))
    assert full_dtypes == {torch.float32} and half_dtypes == {torch.bfloat16}
    assert (full.trained_in, half.trained_in) == ("float32", "bfloat16")
    assert {p.dtype for p in half.model.parameters()} == {torch.float32}  # autocast rounds products, not weights
    assert any(note.startswith("matrix products in bfloat16 (precision: bfloat16") for note in half.notes)
    assert not any("bfloat16" in note for note in full.notes)
    saved = json.loads((save_classifier(half, tmp_path, {"scorecard": "c", "score": "s"}) / "config.json").read_text())
    assert saved["trained_in"] == "bfloat16" and saved["hyperparameters"]["precision"] == "bfloat16"
    for a, b in zip(full.history, half.history, strict=True):  # bfloat16 keeps 8 bits of mantissa: ~0.4 %
        assert b.train_loss == pytest.approx(a.train_loss, rel=0.02)
        assert b.validation_loss == pytest.approx(a.validation_loss, rel=0.02)


def test_a_score_sets_the_precision_and_an_unknown_one_is_refused_at_its_line(project: Path) -> None:
    from plexus_infra.core.errors import ManifestError
    from plexus_train.scorecards import find_score

    folder = project / "scorecards" / "Call Quality"
    folder.mkdir()
    (folder / "Tone.yaml").write_text("name: Tone\nclass: BERTClassifier\nprecision: float32\n")
    assert find_score("Call Quality", "Tone").config.precision == "float32"
    (folder / "Tone.yaml").write_text("name: Tone\nclass: BERTClassifier\nprecision: half\n")
    with pytest.raises(
        ManifestError, match=r"Tone.yaml:3:12: precision: must be one of auto, bfloat16, float32; got \"half\""
    ):
        find_score("Call Quality", "Tone")


PREDICTED = ["the courier never arrived", "the login page keeps crashing", "my invoice is wrong again", "refund me"]


def test_bfloat16_predictions_come_from_the_torch_form_in_bfloat16_close_to_float32(trained: Path) -> None:
    import torch

    from plexus_train.container import inference
    from plexus_train.container.artifacts import LoadedClassifier
    from plexus_train.container.portable import PortableClassifier
    from tests.train.test_inference import MODEL

    directory = trained / MODEL
    full = inference.load_model(directory)
    assert isinstance(full, PortableClassifier)  # float32: the ONNX form, as model_fn loads
    half = inference.load_model(directory, "bfloat16")
    assert isinstance(half, LoadedClassifier) and half.prediction_precision == "bfloat16"
    request = inference.input_fn(json.dumps({"text": PREDICTED}))
    with linear_output_dtypes() as seen:
        rounded = inference.predict_fn(request, half)["predictions"]
    assert seen == {torch.bfloat16}
    exact = inference.predict_fn(request, full)["predictions"]
    for a, b in zip(exact, rounded, strict=True):
        assert a["value"] == b["value"]
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=0.02)
        assert sum(b["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_bfloat16_predictions_on_a_cpu_without_amx_say_so_in_one_line(trained: Path, monkeypatch, capsys) -> None:
    import torch

    from plexus_train.container import inference
    from tests.train.test_inference import MODEL

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    model = inference.load_model(trained / MODEL, "bfloat16")
    assert capsys.readouterr().err == "warning: this CPU has no AMX: bfloat16 predictions may be slower\n"
    assert model.prediction_precision == "bfloat16"  # still what was asked for


def test_predict_and_evaluate_take_a_precision_for_local_artifacts_only(trained: Path) -> None:
    from tests.train.helpers import plexus_cli

    score = ["--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic"]
    asked = plexus_cli("predict", *score, "--text", PREDICTED[0], "--precision", "bfloat16", "--json", cwd=trained)
    assert asked.returncode == 0, asked.stderr
    exact = plexus_cli("predict", *score, "--text", PREDICTED[0], "--json", cwd=trained)
    assert json.loads(asked.stdout)[0]["value"] == json.loads(exact.stdout)[0]["value"]
    for command in (["predict", *score, "--text", "hi"], ["evaluate", "accuracy", *score, "--data", "tickets"]):
        both = plexus_cli(*command, "--precision", "bfloat16", "--endpoint", "e", cwd=trained)
        assert both.returncode == 1 and "argument --endpoint: not allowed with argument --precision" in both.stderr
