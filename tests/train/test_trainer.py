"""The classifier and its training loop: pure pieces first, then real (tiny) training runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from plexus_train.classifiers.config import TrainingConfig
from plexus_train.classifiers.metrics import classification_metrics
from plexus_train.classifiers.split import stratified_split
from plexus_train.classifiers.trainer import lr_factor


def test_macro_metrics_weigh_every_class_equally() -> None:
    metrics = classification_metrics([0, 0, 0, 1], [0, 0, 0, 0], 2)
    assert metrics["accuracy"] == 0.75
    assert metrics["recall"] == 0.5  # class 1 is never found
    assert metrics["precision"] == pytest.approx(0.375)
    assert metrics["f1"] == pytest.approx((2 * 0.75 * 1 / 1.75) / 2)


def test_stratified_split_is_fixed_by_seed_and_covers_every_class() -> None:
    labels = [0] * 12 + [1] * 4 + [2] * 2
    train, validation = stratified_split(labels, 0.25, seed=42)
    assert stratified_split(labels, 0.25, seed=42) == (train, validation)
    assert sorted(train + validation) == list(range(18))
    assert sorted(labels[i] for i in validation) == [0, 0, 0, 1, 2]
    assert {labels[i] for i in train} == {0, 1, 2}


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(step, 2, 10) for step in range(10)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2:] == sorted(factors[2:], reverse=True)
    assert lr_factor(10, 2, 10) == 0.0


def test_hyperparameters_round_trip_through_sagemaker_strings() -> None:
    config = TrainingConfig(embeddings_model="base_model", epochs=4, dropout=0.1, text_column="42")
    encoded = config.to_hyperparameters()
    assert all(isinstance(v, str) for v in encoded.values())
    assert TrainingConfig.from_hyperparameters({**encoded, "sagemaker_program": '"train.py"'}) == config
    decoded = {key: json.loads(value) for key, value in encoded.items()}  # what SM_HPS holds
    assert TrainingConfig.from_hyperparameters(decoded) == config


def test_only_the_last_layers_and_head_train(tiny_model: Path) -> None:
    from plexus_train.classifiers.model import BERTClassifier, encoder_layers, load_encoder

    encoder, _ = load_encoder(str(tiny_model))
    model = BERTClassifier(encoder, classes=5, dropout=0.3)
    model.freeze_all_but_last(1)
    first, last = encoder_layers(encoder)
    assert not any(p.requires_grad for p in first.parameters())
    assert all(p.requires_grad for p in last.parameters())
    assert not any(p.requires_grad for p in encoder.embeddings.parameters())
    assert model.head.out_features == 5 and model.head.weight.requires_grad
    model.freeze_all_but_last(2)
    assert all(p.requires_grad for p in encoder.parameters())


def test_trained_artifacts_reload_offline_with_history(trained: Path) -> None:
    from plexus_train.classifiers.artifacts import load_classifier

    directory = trained / "models" / "test-scorecard-v-1-0" / "ticket-topic"
    config = json.loads((directory / "config.json").read_text())
    history = json.loads((directory / "training_history.json").read_text())
    assert config["labels"] == ["billing", "shipping", "technical"]
    assert config["scorecard"] == "Test Scorecard v 1.0"
    assert len(history) == 2
    assert set(history[0]) >= {
        "train_loss",
        "validation_loss",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "learning_rate",
    }
    assert (directory / "code" / "inference.py").is_file()
    assert (directory / "code" / "plexus_train" / "inference.py").is_file()
    loaded = load_classifier(directory)
    assert loaded.labels == config["labels"]
    assert "[UNK]" not in loaded.tokenizer.tokenize("my refund never arrived")


def test_early_stopping_ends_when_validation_loss_stops_falling(tiny_model: Path) -> None:
    from plexus_train.classifiers.trainer import train_classifier

    texts = ["my invoice is wrong", "the parcel never arrived"] * 6
    labels = ["billing", "shipping"] * 6
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=6, learning_rate=1e-12, early_stopping_patience=1, batch_size=4
    )
    result = train_classifier(texts, labels, config)
    assert result.stopped_early
    assert len(result.history) == 2
    assert result.best_epoch == 1


def test_a_model_that_cannot_load_is_one_clear_error(tmp_path: Path) -> None:
    from plexus_infra.errors import PlexusError
    from plexus_train.classifiers.trainer import train_classifier

    config = replace(TrainingConfig(), embeddings_model=str(tmp_path / "absent"))
    with pytest.raises(PlexusError, match="cannot load embeddings model"):
        train_classifier(["a b", "c d", "a b", "c d"], ["x", "y", "x", "y"], config)
