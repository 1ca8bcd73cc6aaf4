"""Work not repeated each epoch, and the same results for it: the frozen layers' outputs kept per text
(`container/frozen.py`) and batches padded only to their own longest window."""

from __future__ import annotations

from pathlib import Path

import pytest

from plexus_train.container.config import TrainingConfig
from tests.train.test_windows import LONG

TEXTS = [
    "my invoice is wrong",
    LONG,
    "the parcel never arrived and nobody answers the phone",
    "hello",
    LONG + " " + LONG,
]


def classifier(tiny_model: Path, trainable: int, windows: int = 3):
    """A BERTClassifier on the tiny (2-layer) BERT with its last `trainable` layers trainable, and TEXTS as
    windows of 16 tokens (up to `windows` of them)."""
    import torch

    from plexus_train.container.model import BERTClassifier, load_encoder
    from plexus_train.container.windows import Windowing, encode_texts

    torch.manual_seed(0)
    encoder, tokenizer = load_encoder(str(tiny_model))
    model = BERTClassifier(encoder, classes=3, dropout=0.0)
    model.freeze_all_but_last(trainable)
    return model, encode_texts(tokenizer, TEXTS, Windowing(16, windows)), tokenizer.pad_token_id


@pytest.mark.parametrize("trainable", [0, 1])
def test_kept_frozen_outputs_give_the_logits_of_a_full_forward_pass(tiny_model: Path, trainable: int) -> None:
    import torch

    from plexus_train.container.frozen import FrozenPrefix
    from plexus_train.container.windows import collate

    model, encoded, pad = classifier(tiny_model, trainable)
    assert model.frozen_layers() == 2 - trainable
    prefix = FrozenPrefix(model, encoded, pad, budget_bytes=1 << 30)
    prefix.states([4, 1])  # kept from a batch of other texts, padded to another width
    order = [0, 1, 2, 3, 4]
    batch = collate(encoded, order, pad)
    assert sum(batch.windows_per_text) > len(order)  # long texts are several windows
    for mode in (model.eval, model.train):  # in train mode the trainable layer drops out: the same draws
        mode()
        torch.manual_seed(7)
        full = model.logits(batch)
        torch.manual_seed(7)
        with prefix.replaying(order):
            replayed = model.logits(batch)
        assert torch.allclose(full, replayed, atol=1e-5), (full, replayed)
        assert not any("forward" in vars(layer) for layer in prefix.layers)  # the next full pass computes
    assert sorted(prefix.kept) == order
    if trainable:
        replayed.sum().backward()  # gradients reach the trainable layer through the replayed outputs
        last = [p for p in model.encoder.parameters() if p.requires_grad]
        assert last and all(p.grad is not None and p.grad.abs().sum() > 0 for p in last[:2])


def test_the_layers_get_their_own_forward_back_after_a_failure_and_one_set_on_the_instance_stays(
    tiny_model: Path,
) -> None:
    from plexus_train.container.frozen import FrozenPrefix

    model, encoded, pad = classifier(tiny_model, 1)
    prefix = FrozenPrefix(model, encoded, pad, budget_bytes=1 << 30)
    [layer] = prefix.layers
    wrapped = layer.forward  # an instance forward as a wrapping library sets one
    layer.forward = wrapped

    def failing(*args, **kwargs):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"), prefix.replaying([0, 1]):
        failing()
    assert vars(layer)["forward"] is wrapped
    del layer.forward
    with pytest.raises(RuntimeError, match="out of memory"), prefix.replaying([0, 1]):
        failing()
    assert "forward" not in vars(layer)


def test_an_encoder_that_works_between_its_layers_is_not_cached(tiny_model: Path) -> None:
    """DeBERTa-v2 convolves after its first layer inside the layer loop: replaying a later layer's output there
    would be convolved again, so such families run whole (frozen.CACHEABLE)."""
    from plexus_train.container.frozen import frozen_prefix

    model, encoded, pad = classifier(tiny_model, 1)
    assert frozen_prefix(model, encoded, pad, 64) is not None
    model.encoder.config.model_type = "deberta-v2"
    assert frozen_prefix(model, encoded, pad, 64) is None


def test_texts_past_the_memory_budget_are_recomputed_with_the_same_result(tiny_model: Path) -> None:
    import torch

    from plexus_train.container.frozen import FrozenPrefix

    model, encoded, pad = classifier(tiny_model, 1)
    model.eval()
    whole = FrozenPrefix(model, encoded, pad, budget_bytes=1 << 30).states(range(len(TEXTS)))
    one_window = 16 * model.encoder.config.hidden_size * 4  # a full window of float32 states
    small = FrozenPrefix(model, encoded, pad, budget_bytes=2 * one_window)
    assert torch.allclose(small.states(range(len(TEXTS))), whole, atol=1e-6)
    assert 0 < small.used <= 2 * one_window and 0 < len(small.kept) < len(TEXTS)
    assert torch.allclose(small.states(range(len(TEXTS))), whole, atol=1e-6)  # kept ones reused, others redone


def test_frozen_layers_stay_in_eval_mode_while_the_rest_trains(tiny_model: Path) -> None:
    from plexus_train.container.model import encoder_layers

    model, _, _ = classifier(tiny_model, 1)
    model.train()
    first, last = encoder_layers(model.encoder)
    assert not model.encoder.embeddings.training and not first.training
    assert last.training and model.dropout.training
    model.freeze_all_but_last(2)  # everything trains: nothing is kept or held in eval mode
    model.train()
    assert model.frozen_layers() == 0 and model.encoder.embeddings.training


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_training_with_kept_frozen_outputs_matches_training_without(tiny_model: Path, precision: str) -> None:
    from plexus_train.container.trainer import train_classifier

    texts = [
        "my invoice is wrong",
        "the parcel never arrived",
        "refund the double charge",
        "where is my package",
    ] * 5
    labels = ["billing", "shipping"] * 10
    base = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=3, batch_size=4, trainable_layers=1, precision=precision
    )
    kept = train_classifier(texts, labels, base)
    recomputed = train_classifier(texts, labels, TrainingConfig(**{**base.__dict__, "frozen_cache_megabytes": 0}))
    for a, b in zip(kept.history, recomputed.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.validation_loss == pytest.approx(b.validation_loss, rel=1e-4)
        assert a.f1 == b.f1 and a.train_f1 == b.train_f1
    assert kept.best_epoch == recomputed.best_epoch


def test_a_batch_padded_to_its_longest_window_gives_the_loss_of_one_padded_to_the_window(tiny_model: Path) -> None:
    import numpy
    import torch

    from plexus_train.container.windows import WindowBatch, collate

    model, encoded, pad = classifier(tiny_model, 1, windows=1)
    model.eval()
    order = [0, 3, 2]  # short texts: their longest window is well under 16 tokens
    tight = collate(encoded, order, pad)
    extra = 16 - tight.input_ids.shape[1]
    assert extra > 0
    wide = WindowBatch(
        numpy.pad(tight.input_ids, ((0, 0), (0, extra)), constant_values=pad),
        numpy.pad(tight.attention_mask, ((0, 0), (0, extra)), constant_values=0),
        tight.windows_per_text,
    )
    targets = torch.tensor([0, 1, 2])
    loss = torch.nn.CrossEntropyLoss()
    assert loss(model.logits(tight), targets).item() == pytest.approx(
        loss(model.logits(wide), targets).item(), rel=1e-5
    )
