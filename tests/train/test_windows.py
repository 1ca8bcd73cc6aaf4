"""Long texts as windows (`container/windows.py`), the same in training and inference, and Plexus's
warmup-plateau-decay learning-rate schedule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from plexus_train.container.config import TrainingConfig
from plexus_train.container.trainer import plateau_rate
from plexus_train.container.windows import Windowing, split_windows
from tests.train.helpers import learning_rates

LONG = " ".join(
    [
        "Hi, my invoice is wrong again.",
        "Hello team, the courier never arrived.",
        "Quick note: the app keeps crashing.",
        "Hey, the monthly fee was sorted quickly, thank you.",
        "Hi, the dashboard works great now.",
    ]
)


def test_a_text_is_cut_into_windows_from_the_start_or_the_end_in_document_order() -> None:
    ids = list(range(1, 11))
    assert split_windows(ids, 4, Windowing(6, 1)) == [[1, 2, 3, 4]]
    assert split_windows(ids, 4, Windowing(6, 2)) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert split_windows(ids, 4, Windowing(6, 0)) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert split_windows(ids, 4, Windowing(6, 1, from_end=True)) == [[7, 8, 9, 10]]
    assert split_windows(ids, 4, Windowing(6, 2, from_end=True)) == [[3, 4, 5, 6], [7, 8, 9, 10]]
    assert split_windows(ids, 4, Windowing(6, 0, from_end=True)) == [[1, 2], [3, 4, 5, 6], [7, 8, 9, 10]]
    assert split_windows([], 4, Windowing(6, 3)) == [[]]


def test_one_window_from_the_start_is_what_plain_truncation_gives(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from plexus_train.container.windows import encode_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    plain = tokenizer([LONG, "the app"], truncation=True, max_length=12)["input_ids"]
    assert encode_texts(tokenizer, [LONG, "the app"], Windowing(12)) == [[plain[0]], [plain[1]]]


def test_windows_carry_the_encoders_special_tokens_and_cover_the_text(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from plexus_train.container.windows import encode_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    whole = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    assert len(whole) > 40  # several windows of 12
    (windows,) = encode_texts(tokenizer, [LONG], Windowing(12, 0))
    assert all(w[0] == tokenizer.cls_token_id and w[-1] == tokenizer.sep_token_id for w in windows)
    assert all(len(w) <= 12 for w in windows)
    assert [token for w in windows for token in w[1:-1]] == whole
    (last,) = encode_texts(tokenizer, [LONG], Windowing(12, 1, from_end=True))
    assert last == [[tokenizer.cls_token_id, *whole[-10:], tokenizer.sep_token_id]]


def _classifier(tiny_model: Path, config: TrainingConfig):
    import torch

    from plexus_train.container.artifacts import LoadedClassifier
    from plexus_train.container.model import BERTClassifier, load_encoder

    torch.manual_seed(0)
    encoder, tokenizer = load_encoder(str(tiny_model))
    model = BERTClassifier(encoder, 3, 0.0, config.window_pooling).eval()
    return LoadedClassifier(model, tokenizer, ["billing", "shipping", "technical"], config, {})


def test_the_window_settings_change_what_the_encoder_sees(tiny_model: Path) -> None:
    """The encoder's own input, recorded: one window of the start, of the end, or every window of the text."""
    from plexus_train.container import inference

    base = TrainingConfig(embeddings_model=str(tiny_model), max_tokens=12)
    seen: dict[str, list[list[int]]] = {}
    answers = {}
    settings = {
        "first window": base,
        "last window": replace(base, start_from_end=True),
        "four windows": replace(base, max_windows=4),
        "four windows, mean": replace(base, max_windows=4, window_pooling="mean"),
    }
    for name, config in settings.items():
        loaded = _classifier(tiny_model, config)

        def record(_module, _args, kwargs, name=name) -> None:
            seen.setdefault(name, kwargs["input_ids"].tolist())

        hook = loaded.model.encoder.register_forward_pre_hook(record, with_kwargs=True)
        answers[name] = inference.predict_fn({"texts": [LONG], "batch": False}, loaded)["predictions"][0]
        hook.remove()
    whole = loaded.tokenizer(LONG, add_special_tokens=False)["input_ids"]
    cls, sep = loaded.tokenizer.cls_token_id, loaded.tokenizer.sep_token_id
    assert seen["first window"] == [[cls, *whole[:10], sep]]
    assert seen["last window"] == [[cls, *whole[-10:], sep]]
    assert [row[1:11] for row in seen["four windows"]] == [whole[i : i + 10] for i in range(0, 40, 10)]
    assert seen["four windows, mean"] == seen["four windows"]
    probabilities = {name: answer["probabilities"] for name, answer in answers.items()}
    assert len({json.dumps(p, sort_keys=True) for p in probabilities.values()}) == 4  # each sees another text


def test_window_vectors_pool_by_element_wise_max_or_mean() -> None:
    import torch

    from plexus_train.container.windows import pool_windows

    vectors = torch.tensor([[1.0, 5.0], [3.0, 2.0], [7.0, 0.0]])
    assert pool_windows(vectors, [2, 1]).tolist() == [[3.0, 5.0], [7.0, 0.0]]
    assert pool_windows(vectors, [2, 1], "mean").tolist() == [[2.0, 3.5], [7.0, 0.0]]
    assert pool_windows(vectors, [1, 1, 1]) is vectors


def test_training_time_and_inference_time_predictions_agree_on_long_texts(tiny_model: Path, tmp_path: Path) -> None:
    """The validation metrics training recorded are exactly those of the saved model's inference handlers on the
    same validation texts, windows and all."""
    import csv

    from plexus_train.container import inference
    from plexus_train.container.artifacts import save_classifier
    from plexus_train.container.metrics import classification_metrics
    from plexus_train.container.split import stratified_split
    from plexus_train.container.trainer import train_classifier
    from tests.train.helpers import PLEXUS_PROJECT

    with (PLEXUS_PROJECT / "data" / "transcripts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:60]
    texts, labels = [row["Transcription"] for row in rows], [row["Call Intent"] for row in rows]
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=2, batch_size=8, max_tokens=16, max_windows=3, start_from_end=True,
        learning_rate=0.002, seed=3,
    )  # fmt: skip
    trained = train_classifier(texts, labels, config)
    directory = save_classifier(trained, tmp_path / "model", {"scorecard": "c", "score": "s"})
    loaded = inference.model_fn(str(directory))
    assert loaded.config.windowing == Windowing(16, 3, from_end=True)
    classes = sorted(set(labels))
    _, validation = stratified_split([classes.index(label) for label in labels], config.validation_fraction, 3)
    body = json.dumps({"text": [texts[i] for i in validation]})
    answers = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body), loaded)))
    predicted = [classes.index(answer["value"]) for answer in answers]
    truth = [classes.index(labels[i]) for i in validation]
    best = trained.best
    metrics = classification_metrics(truth, predicted, len(classes))
    assert metrics == pytest.approx({k: getattr(best, k) for k in ("accuracy", "precision", "recall", "f1")})


def test_plexus_schedule_warms_up_holds_the_plateau_then_decays_per_epoch() -> None:
    config = TrainingConfig(
        schedule="plateau", warmup_learning_rate=1e-6, learning_rate=1e-4, warmup_epochs=1, plateau_epochs=1,
        learning_rate_decay=0.5,
    )  # fmt: skip
    rates = [plateau_rate(step, 2, config) for step in range(10)]
    assert rates == pytest.approx([1e-6, 5.05e-5, 1e-4, 1e-4, 1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5])


def test_the_trainer_runs_the_schedule_the_score_names(tiny_model: Path) -> None:
    """The learning rates each optimizer step really used: Plexus's schedule when one of its fields is set."""
    config = TrainingConfig(
        embeddings_model=str(tiny_model), epochs=3, batch_size=2, schedule="plateau", warmup_learning_rate=0.0,
        learning_rate=0.8, warmup_epochs=1, plateau_epochs=0, learning_rate_decay=0.5,
    )  # fmt: skip
    assert learning_rates(config) == pytest.approx([0.0, 0.2, 0.4, 0.6] + [0.8] * 4 + [0.4] * 4)


def test_no_plexus_schedule_field_keeps_the_linear_schedule(plexus_project: Path) -> None:
    from plexus_train.scorecards import find_score

    assert find_score("Test Scorecard", "Topic").config.schedule == "linear"
    assert find_score("Call Center QA", "Call Intent").config.schedule == "plateau"


def test_length_buckets_keep_every_text_once_and_batch_similar_lengths_in_a_random_order() -> None:
    import random

    from plexus_train.container.windows import length_buckets

    draw = random.Random(1)
    lengths = [draw.randint(1, 500) for _ in range(1000)]
    order = list(range(1000))
    random.Random(2).shuffle(order)
    batches = length_buckets(order, lengths, 16, random.Random(3))
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert sorted(map(len, batches)) == [8] + [16] * 62  # runs of 50 batches' worth: 800 texts, then 200
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    unsorted = sum(len(c) * max(lengths[i] for i in c) for c in (order[s : s + 16] for s in range(0, 1000, 16)))
    assert padded < 0.6 * unsorted  # padding to each batch's longest text costs far less
    firsts = [min(lengths[i] for i in batch) for batch in batches]
    assert firsts != sorted(firsts)  # batches do not run from short to long
    assert length_buckets(order, lengths, 16, random.Random(3)) == batches  # seeded: the same every run


def test_prediction_batches_end_at_their_token_budget_counting_padding_and_windows() -> None:
    from plexus_train.container.windows import batched

    encoded = [[[1, 2, 3]], [[1, 2, 3]], [[1, 2, 3, 4, 5]], [[1, 2], [1, 2]], [[1] * 9]]
    cut = [list(chosen) for chosen, _ in batched(encoded, [0, 1, 2, 3, 4], 32, pad=0, max_tokens=6)]
    # 0 and 1: 2 windows × 3 tokens; 2 would pad them to 5 (15 tokens); 3 after 2: 3 × 5; 4 is over the budget alone
    assert cut == [[0, 1], [2], [3], [4]]
    shapes = [batch.input_ids.shape for _, batch in batched(encoded, [0, 1, 2, 3, 4], 32, pad=0, max_tokens=6)]
    assert all(rows * width <= 6 for rows, width in shapes[:3]) and shapes[3] == (1, 9)
    assert [list(c) for c, _ in batched(encoded, [0, 1, 2, 3, 4], 2, pad=0)] == [[0, 1], [2, 3], [4]]  # no budget
