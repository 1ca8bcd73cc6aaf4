"""The classifier and its training loop: pure pieces first, then real (tiny) training runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from plexus_train.container.config import TrainingConfig
from plexus_train.container.metrics import classification_metrics
from plexus_train.container.split import stratified_split
from plexus_train.container.trainer import lr_factor
from tests.train.helpers import learning_rates


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


def test_learning_rate_warms_up_to_one_peak_then_decays_linearly_to_zero() -> None:
    factors = [lr_factor(step, 2, 10) for step in range(11)]
    expected = [1 / 3, 2 / 3, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]
    assert factors == pytest.approx(expected)
    assert factors.count(1.0) == 1  # the peak is held for one step, not two
    assert [lr_factor(step, 0, 4) for step in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_the_scheduler_gives_each_optimizer_step_its_factor(tiny_model: Path) -> None:
    """The learning rates the trainer really uses: warmup_ratio 0.25 of 8 steps is 2 warmup steps."""
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=2, batch_size=2, learning_rate=0.8, warmup_ratio=0.25
    )  # 8 train examples: 4 batches of 2
    seen = learning_rates(config)
    assert seen == pytest.approx([0.8 * f for f in (1 / 3, 2 / 3, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6)])


def test_hyperparameters_round_trip_through_sagemaker_strings() -> None:
    config = TrainingConfig(embeddings_model="base_model", epochs=4, dropout=0.1, text_column="42")
    encoded = config.to_hyperparameters()
    assert all(isinstance(v, str) for v in encoded.values())
    assert TrainingConfig.from_hyperparameters({**encoded, "sagemaker_program": '"train.py"'}) == config
    decoded = {key: json.loads(value) for key, value in encoded.items()}  # what SM_HPS holds
    assert TrainingConfig.from_hyperparameters(decoded) == config


def test_only_the_last_layers_and_head_train(tiny_model: Path) -> None:
    from plexus_train.container.model import BERTClassifier, encoder_layers, load_encoder

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
    from plexus_train.container.artifacts import load_classifier

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
    assert (directory / "code" / "plexus_train" / "container" / "inference.py").is_file()
    loaded = load_classifier(directory)
    assert loaded.labels == config["labels"]
    assert "[UNK]" not in loaded.tokenizer.tokenize("my refund never arrived")


def test_the_best_epoch_is_the_highest_validation_macro_f1_then_the_lowest_loss() -> None:
    from plexus_train.container.trainer import is_better

    assert is_better(0.90, 0.70, 0.85, 0.40)  # more right, though less sure of the ones it gets wrong
    assert not is_better(0.85, 0.70, 0.90, 0.40)
    assert is_better(0.85, 0.39, 0.85, 0.40)  # a tie on macro-F1: the lower loss
    assert not is_better(0.85, 0.40, 0.85, 0.40)  # no better at all: a stale epoch


def test_early_stopping_ends_when_validation_stops_improving(tiny_model: Path) -> None:
    from plexus_train.container.trainer import train_classifier

    texts = ["my invoice is wrong", "the parcel never arrived"] * 6
    labels = ["billing", "shipping"] * 6
    config = TrainingConfig(
        embeddings_model=str(tiny_model),
        epochs=6,
        learning_rate=1e-12,
        head_learning_rate=1e-12,
        early_stopping_patience=1,
        batch_size=4,
    )
    result = train_classifier(texts, labels, config)
    assert result.stopped_early
    assert len(result.history) == 2
    assert result.best_epoch == 1


def test_a_model_that_cannot_load_is_one_clear_error(tmp_path: Path) -> None:
    from plexus_train.container.errors import ContainerError
    from plexus_train.container.trainer import train_classifier

    config = replace(TrainingConfig(), embeddings_model=str(tmp_path / "absent"))
    with pytest.raises(ContainerError, match="cannot load embeddings model"):
        train_classifier(["a b", "c d", "a b", "c d"], ["x", "y", "x", "y"], config)


def test_a_missing_relative_model_directory_is_named_not_sent_to_the_hub(project: Path) -> None:
    from plexus_train.container.errors import ContainerError
    from plexus_train.container.model import load_encoder

    (project / "build").mkdir()
    for name in ("build/tiny-bert", "./encoders/tiny", "models/x/encoder", "a/b/c"):
        with pytest.raises(ContainerError, match=f"no such local model directory {name}$"):
            load_encoder(name)


def test_a_tokenizer_without_a_vocabulary_is_refused_naming_the_directory(tiny_model: Path, tmp_path: Path) -> None:
    """transformers 5 builds a 5-token tokenizer from a directory without tokenizer files: all text is [UNK]."""
    import shutil

    from plexus_train.container.errors import ContainerError
    from plexus_train.container.model import load_encoder

    bare = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model, bare)
    for path in bare.iterdir():
        if path.name.startswith(("tokenizer", "vocab", "special_tokens")):
            path.unlink()
    with pytest.raises(ContainerError, match=f"^embeddings model {bare}: the tokenizer has 5 tokens but the encoder"):
        load_encoder(str(bare))


def test_a_window_longer_than_the_encoder_takes_is_capped_and_said(tiny_model: Path) -> None:
    from plexus_train.container.trainer import train_classifier

    class Summary:
        message = ""

        def start(self, epochs, batches):
            pass

        def batch(self, loss, learning_rate):
            pass

        def epoch(self, result):
            pass

        def finish(self, message):
            self.message = message

    long = " ".join(["refund"] * 700)  # longer than the tiny BERT's 512 positions
    texts = [long, "the parcel never arrived", long, "the courier is late"]
    config = TrainingConfig(embeddings_model=str(tiny_model), epochs=1, batch_size=4, max_tokens=1000)
    reporter = Summary()
    result = train_classifier(texts, ["billing", "shipping"] * 2, config, reporter)
    assert result.config.max_tokens == 512
    assert "; maximum_tokens_per_window 1000 capped at 512, the encoder's limit" in reporter.message


def test_the_head_learns_at_its_own_rate_and_training_macro_f1_is_recorded(tiny_model: Path) -> None:
    import torch

    from plexus_train.container.model import load_encoder
    from plexus_train.container.trainer import train_classifier

    texts = ["my invoice is wrong", "the parcel never arrived"] * 6
    labels = ["billing", "shipping"] * 6
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=1, learning_rate=1e-12, head_learning_rate=1e-2, batch_size=4
    )
    result = train_classifier(texts, labels, config)
    fresh, _ = load_encoder(str(tiny_model))
    top = {name: value for name, value in fresh.state_dict().items() if ".layer.1." in name}
    trained = result.model.encoder.state_dict()
    assert all(torch.allclose(trained[name], value, atol=1e-6) for name, value in top.items())  # 1e-12: still
    torch.manual_seed(config.seed)  # the head as it was initialised
    initial = torch.nn.Linear(fresh.config.hidden_size, 2)
    assert not torch.allclose(result.model.head.weight, initial.weight)  # 1e-2: it moved
    assert 0.0 <= result.history[0].train_f1 <= 1.0


def test_the_encoders_attention_dropout_is_the_configured_one(tiny_model: Path) -> None:
    from plexus_train.container.model import load_encoder

    def attention_dropouts(encoder) -> set[float]:
        return {module.p for name, module in encoder.named_modules() if name.endswith("attention.self.dropout")}

    own, _ = load_encoder(str(tiny_model))
    assert own.config.attention_probs_dropout_prob == 0.1 and attention_dropouts(own) == {0.1}
    tuned, _ = load_encoder(str(tiny_model), TrainingConfig().attention_dropout)
    assert tuned.config.attention_probs_dropout_prob == 0.0 and attention_dropouts(tuned) == {0.0}
    assert attention_dropouts(load_encoder(str(tiny_model), 0.25)[0]) == {0.25}
