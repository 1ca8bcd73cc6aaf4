"""The training loop: stratified split, AdamW, a learning-rate schedule (linear warmup and decay, or Plexus's
warmup-plateau-decay by epochs), early stopping on validation loss. Texts become windows once, up front
(`windows.encode_texts`), exactly as the inference handlers make them.

Progress goes to a Reporter, so the same loop drives a rich display on a terminal and plain log lines in a
SageMaker container (where CloudWatch keeps them).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from plexus_train.container.config import TrainingConfig
from plexus_train.container.metrics import classification_metrics
from plexus_train.container.model import BERTClassifier, load_encoder
from plexus_train.container.reporting import EpochResult, Reporter, SilentReporter
from plexus_train.container.split import stratified_split
from plexus_train.container.windows import EncodedText, batched, encode_texts


@dataclass
class TrainedClassifier:
    """A trained model with what it needs to be saved and reloaded."""

    model: BERTClassifier
    tokenizer: Any
    labels: list[str]
    config: TrainingConfig
    history: list[EpochResult] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> EpochResult:
        return self.history[self.best_epoch - 1]


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The `linear` schedule's learning-rate multiplier for optimizer step `step` (0-based): a linear rise over the
    `warmup_steps` first steps, the peak 1 at step `warmup_steps` (once), then a linear fall that would reach 0 at
    `total_steps`.

    Example: `[lr_factor(s, 2, 6) for s in range(6)] == [1/3, 2/3, 1.0, 0.75, 0.5, 0.25]`
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    remaining = total_steps - warmup_steps
    return max(0.0, (total_steps - step) / remaining) if remaining > 0 else 1.0


def plateau_rate(step: int, steps_per_epoch: int, config: TrainingConfig) -> float:
    """The `plateau` schedule (Plexus's classifiers'): the learning rate of optimizer step `step` (0-based).

    Over the first `warmup_epochs` it rises linearly, step by step, from `warmup_learning_rate` to
    `learning_rate` (the plateau); it then holds the plateau through epoch `warmup_epochs + plateau_epochs`, and
    each later epoch multiplies it by `learning_rate_decay`: epoch e ≥ W+P runs at plateau × decay^(e − W − P),
    Plexus's own formula (so the first epoch after the plateau epochs still runs at the plateau rate).

    Example: warmup 1e-6 → plateau 1e-4 over 1 epoch of 2 steps, 1 plateau epoch, decay 0.5, for 4 epochs:
    `[1e-6, 5.05e-5, 1e-4, 1e-4, 1e-4, 1e-4, 5e-5, 5e-5]`
    """
    epoch = step // steps_per_epoch
    warmup_steps = config.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        rise = config.learning_rate - config.warmup_learning_rate
        return config.warmup_learning_rate + rise * step / warmup_steps
    after_plateau = epoch - config.warmup_epochs - config.plateau_epochs
    return config.learning_rate * config.learning_rate_decay ** max(0, after_plateau)


def schedule_factor(config: TrainingConfig, steps_per_epoch: int, total_steps: int):
    """The multiplier of `config.learning_rate` at each optimizer step, for the config's schedule."""
    if config.schedule == "plateau":
        return lambda step: plateau_rate(step, steps_per_epoch, config) / config.learning_rate
    warmup = int(total_steps * config.warmup_ratio)
    return lambda step: lr_factor(step, warmup, total_steps)


def batches(encoded: Sequence[EncodedText], targets: torch.Tensor, order: Sequence[int], size: int, pad: int):
    """Yield (windows, targets) batches of the texts in `order`, each padded to its own longest window."""
    for chosen, batch in batched(encoded, order, size, pad):
        yield batch, targets[list(chosen)]


def device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    config: TrainingConfig,
    reporter: Reporter | None = None,
) -> TrainedClassifier:
    """Fine-tune a BERTClassifier on (text, label) pairs and return the model of the best validation epoch.

    Texts are cut into windows once up front (`config.windowing`); the classes are the sorted distinct labels.
    """
    reporter = reporter or SilentReporter()
    torch.manual_seed(config.seed)
    classes = sorted(set(labels))
    encoder, tokenizer = load_encoder(config.embeddings_model)
    notes = []
    limit = token_limit(encoder, tokenizer)
    if limit is not None and config.max_tokens > limit:
        notes.append(f"maximum_tokens_per_window {config.max_tokens} capped at {limit}, the encoder's limit")
        config = replace(config, max_tokens=limit)
    model = BERTClassifier(encoder, len(classes), config.dropout, config.window_pooling)
    model.freeze_all_but_last(config.trainable_layers)
    run = _Run(model, tokenizer, classes, config, reporter)
    return run.fit(texts, labels, notes)


def token_limit(encoder: Any, tokenizer: Any) -> int | None:
    """The most tokens per text the encoder takes: its position embeddings, or the tokenizer's declared
    maximum when smaller (RoBERTa-style models reserve two positions); None when neither says."""
    limits = [getattr(encoder.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    known = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000]
    return min(known) if known else None


class _Run:
    """The state of one training run; `fit` is the only entry."""

    def __init__(
        self, model: BERTClassifier, tokenizer: Any, classes: list[str], config: TrainingConfig, reporter: Reporter
    ):
        self.model = model.to(device())
        self.tokenizer = tokenizer
        self.classes = classes
        self.config = config
        self.reporter = reporter
        self.loss = nn.CrossEntropyLoss()

    def fit(self, texts: Sequence[str], labels: Sequence[str], notes: Sequence[str] = ()) -> TrainedClassifier:
        config = self.config
        index = {label: i for i, label in enumerate(self.classes)}
        targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
        train, validation = stratified_split(targets.tolist(), config.validation_fraction, config.seed)
        encoded = encode_texts(self.tokenizer, texts, config.windowing)
        per_epoch = -(-len(train) // config.batch_size)
        total = per_epoch * config.epochs
        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(config, per_epoch, total))
        rng = random.Random(config.seed)
        result = TrainedClassifier(self.model, self.tokenizer, self.classes, config, notes=list(notes))
        best_loss, best_state, stale = float("inf"), None, 0
        self.reporter.start(config.epochs, per_epoch)
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = list(train)
            rng.shuffle(order)
            learning_rate = schedule.get_last_lr()[0]
            train_loss = self._train_epoch(encoded, targets, order, optimizer, schedule)
            train_seconds = time.perf_counter() - started
            validation_loss, metrics = self._evaluate(encoded, targets, validation)
            outcome = EpochResult(
                epoch=epoch,
                train_loss=train_loss,
                validation_loss=validation_loss,
                learning_rate=learning_rate,
                train_examples=len(train),
                train_seconds=train_seconds,
                seconds=time.perf_counter() - started,
                **metrics,
            )
            result.history.append(outcome)
            self.reporter.epoch(outcome)
            if validation_loss < best_loss:
                best_loss, stale, result.best_epoch = validation_loss, 0, epoch
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                stale += 1
                if stale >= config.early_stopping_patience and epoch < config.epochs:
                    result.stopped_early = True
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        self.reporter.finish(_summary(result))
        return result

    def _train_epoch(self, encoded, targets, order, optimizer, schedule) -> float:
        self.model.train()
        total, seen = 0.0, 0
        pad = self.tokenizer.pad_token_id or 0
        for batch, expected in batches(encoded, targets, order, self.config.batch_size, pad):
            learning_rate = schedule.get_last_lr()[0]
            loss = self.loss(self.model.logits(batch), expected.to(device()))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            value = loss.item()
            total += value * len(expected)
            seen += len(expected)
            self.reporter.batch(value, learning_rate)
        return total / seen

    @torch.no_grad()
    def _evaluate(self, encoded, targets, subset) -> tuple[float, dict[str, float]]:
        self.model.eval()
        total, predicted = 0.0, []
        pad = self.tokenizer.pad_token_id or 0
        for batch, expected in batches(encoded, targets, subset, self.config.batch_size, pad):
            logits = self.model.logits(batch)
            total += self.loss(logits, expected.to(device())).item() * len(expected)
            predicted.extend(logits.argmax(dim=-1).tolist())
        truth = targets[list(subset)].tolist()
        return total / len(subset), classification_metrics(truth, predicted, len(self.classes))


def _summary(result: TrainedClassifier) -> str:
    best = result.best
    why = "stopped early: validation loss stopped improving" if result.stopped_early else "finished"
    text = (
        f"{why}; best epoch {best.epoch}: validation loss {best.validation_loss:.4f}, "
        f"accuracy {best.accuracy:.3f}, macro F1 {best.f1:.3f}"
    )
    return "; ".join([text, *result.notes])
