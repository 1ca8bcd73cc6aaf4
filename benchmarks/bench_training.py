"""Training throughput (examples/s) of plexus_train's trainer against a bare torch loop over the same model
and data, in the same run; median of several runs each. Target: the trainer ≥ 0.9× the bare loop.

    HF_HUB_OFFLINE=1 python benchmarks/bench_training.py [--runs 5]

Both sides train the same tiny BERT (hidden 128, 2 layers, all trainable) on the demo tickets with the same
batch size and token limit. The trainer's figure counts its training phase (its per-epoch train_seconds);
the whole fit, including the per-epoch validation pass that early stopping needs, is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from plexus_train.container.config import TrainingConfig
from plexus_train.container.model import BERTClassifier, load_encoder
from plexus_train.container.split import stratified_split
from plexus_train.container.trainer import batches, train_classifier
from plexus_train.container.windows import encode_texts
from plexus_train.tinymodel import build_tiny_bert, csv_texts, vocabulary

DATA = Path(__file__).resolve().parent.parent / "datasources" / "support_tickets.csv"
EPOCHS = 3


def bare_loop(texts: list[str], labels: list[str], config: TrainingConfig) -> float:
    """Examples/s of the plainest correct loop: pre-tokenized batches, forward, loss, backward, AdamW step."""
    torch.manual_seed(config.seed)
    classes = sorted(set(labels))
    encoder, tokenizer = load_encoder(config.embeddings_model)
    model = BERTClassifier(encoder, len(classes), config.dropout)
    model.freeze_all_but_last(config.trainable_layers)
    targets = torch.tensor([classes.index(label) for label in labels])
    train, _ = stratified_split(targets.tolist(), config.validation_fraction, config.seed)
    encoded = encode_texts(tokenizer, texts, config.windowing)  # one window per text: max_windows is 1
    prepared = list(batches(encoded, targets, train, config.batch_size, tokenizer.pad_token_id))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for _ in range(EPOCHS):
        for batch, expected in prepared:
            loss = loss_fn(model(batch.input_ids, batch.attention_mask), expected)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return len(train) * EPOCHS / (time.perf_counter() - started)


def trainer(texts: list[str], labels: list[str], config: TrainingConfig) -> tuple[float, float]:
    """(training-phase examples/s, whole-fit examples/s) of train_classifier."""
    started = time.perf_counter()
    result = train_classifier(texts, labels, config)
    whole = time.perf_counter() - started
    examples = sum(epoch.train_examples for epoch in result.history)
    return examples / sum(epoch.train_seconds for epoch in result.history), examples / whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    texts = csv_texts(DATA, "text")
    labels = csv_texts(DATA, "topic")
    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_bert(Path(scratch) / "bert", vocabulary(texts), hidden_size=128)
        config = TrainingConfig(
            embeddings_model=str(model), trainable_layers=2, epochs=EPOCHS, batch_size=16, max_tokens=32,
            learning_rate=1e-3, early_stopping_patience=EPOCHS,
        )  # fmt: skip
        bare, ours, whole = [], [], []
        for _ in range(args.runs):  # interleaved, so drift in machine load hits both sides alike
            bare.append(bare_loop(texts, labels, config))
            phase, fit = trainer(texts, labels, config)
            ours.append(phase)
            whole.append(fit)
    b, t, w = statistics.median(bare), statistics.median(ours), statistics.median(whole)
    print(f"bare torch loop:            {b:8.0f} examples/s (median of {args.runs})")
    print(f"trainer, training phase:    {t:8.0f} examples/s ({t / b:.2f}× the bare loop; target ≥ 0.90×)")
    print(f"trainer, whole fit + val:   {w:8.0f} examples/s ({w / b:.2f}×; includes loading and validation)")


if __name__ == "__main__":
    main()
