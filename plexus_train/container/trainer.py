"""The training loop: stratified split, AdamW (the head at its own, higher rate), a learning-rate schedule (linear
warmup and decay, or Plexus's warmup-plateau-decay by epochs), early stopping on validation macro-F1 (ties: the
lower validation loss; macro-F1 is what the score is judged by, and the loss of a model growing confident keeps
rising while its macro-F1 still improves). Texts become windows once, up front (`windows.encode_texts`), exactly as
the inference handlers make them; training batches hold texts of similar length (`windows.length_buckets`), so
little is spent on padding.

Progress goes to a Reporter, so the same loop drives a rich display on a terminal and plain log lines in a
SageMaker container (where CloudWatch keeps them).

With several processes (`distributed.World`) the model is wrapped in DistributedDataParallel and each rank trains on
its share of every batch (`distributed.shard`), its loss scaled so that the averaged gradient is the whole batch's
mean, exactly as one process would compute it; the training loss is all-reduced, and rank 0 alone evaluates,
checkpoints and keeps the best weights, its validation loss broadcast so every rank stops at the same epoch. With a
checkpoint directory each epoch's end is checkpointed and a run resumes from the newest checkpoint
(`checkpoints`).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plexus_train.container import checkpoints, precision
from plexus_train.container.config import TrainingConfig
from plexus_train.container.distributed import World, from_main, gathered, shard, summed
from plexus_train.container.frozen import FrozenPrefix, frozen_prefix
from plexus_train.container.metrics import classification_metrics, confusion_matrix, macro_f1_of
from plexus_train.container.model import BERTClassifier, load_encoder
from plexus_train.container.reporting import EpochResult, Reporter, SilentReporter
from plexus_train.container.split import stratified_split
from plexus_train.container.windows import (
    WindowBatch,
    batched,
    collate,
    encode_texts,
    length_buckets,
    pad_id,
    shortest_first,
    text_lengths,
)

# Settings that change no trained weight, left out of a checkpoint's fingerprint.
RESULT_NEUTRAL = frozenset({"frozen_cache_megabytes", "onnx_inference"})


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
    world_size: int = 1
    resumed_from: int = 0  # the epoch of the checkpoint this run resumed from (0: none)
    trained_in: str = "float32"  # the dtype of its matrix products: `precision` as resolved on its hardware

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


def is_better(f1: float, loss: float, best_f1: float, best_loss: float) -> bool:
    """Whether an epoch's validation (macro-F1, loss) beats the best so far: a higher macro-F1, or the same with a
    lower loss. Macro-F1 first, because it is what a score is judged by, and a model growing confident can raise
    its validation loss on the examples it gets wrong while it gets more of them right.

    Example: `is_better(0.90, 0.50, 0.85, 0.40) and not is_better(0.85, 0.45, 0.85, 0.40)`
    """
    return (f1, -loss) > (best_f1, -best_loss)


def schedule_factor(config: TrainingConfig, steps_per_epoch: int, total_steps: int):
    """The multiplier of `config.learning_rate` at each optimizer step, for the config's schedule."""
    if config.schedule == "plateau":
        return lambda step: plateau_rate(step, steps_per_epoch, config) / config.learning_rate
    warmup = int(total_steps * config.warmup_ratio)
    return lambda step: lr_factor(step, warmup, total_steps)


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    config: TrainingConfig,
    reporter: Reporter | None = None,
    checkpoint_dir: Path | None = None,
    world: World | None = None,
) -> TrainedClassifier:
    """Fine-tune a BERTClassifier on (text, label) pairs and return the model of the best validation epoch.

    Texts are cut into windows once up front (`config.windowing`); the classes are the sorted distinct labels.
    + checkpoint_dir: checkpoint each epoch here and resume from the newest checkpoint found (None: neither)
    + world: this process's place among several training processes (None: training alone)
    """
    reporter = reporter or SilentReporter()
    torch.manual_seed(config.seed)
    classes = sorted(set(labels))
    encoder, tokenizer = load_encoder(config.embeddings_model, config.attention_dropout)
    notes = []
    limit = token_limit(encoder, tokenizer)
    if limit is not None and config.max_tokens > limit:
        notes.append(f"maximum_tokens_per_window {config.max_tokens} capped at {limit}, the encoder's limit")
        config = replace(config, max_tokens=limit)
    model = BERTClassifier(encoder, len(classes), config.dropout, config.window_pooling)
    model.freeze_all_but_last(config.trainable_layers)
    run = _Run(model, tokenizer, classes, config, reporter, world or World(), checkpoint_dir)
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
        self,
        model: BERTClassifier,
        tokenizer: Any,
        classes: list[str],
        config: TrainingConfig,
        reporter: Reporter,
        world: World,
        checkpoint_dir: Path | None,
    ):
        self.world = world
        self.device = world.device()
        self.model = model.to(self.device)
        self.forward: Any = self.model
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # The encoder's pooler (BERT's) trains nothing here (windows are mean-pooled) but may be unfrozen.
            self.forward = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        self.tokenizer = tokenizer
        self.classes = classes
        self.config = config
        self.reporter = reporter if world.main else SilentReporter()
        self.checkpoint_dir = checkpoint_dir
        self.loss = nn.CrossEntropyLoss()
        self.summed_loss = nn.CrossEntropyLoss(reduction="sum")
        self.prefix: FrozenPrefix | None = None  # set by `fit`, once the texts are windows
        self.pad = pad_id(tokenizer)
        self.dtype = precision.resolve(config.precision, self.device)

    def fit(self, texts: Sequence[str], labels: Sequence[str], notes: Sequence[str] = ()) -> TrainedClassifier:
        config, world = self.config, self.world
        dtype = str(self.dtype).removeprefix("torch.")
        if self.dtype != torch.float32:
            emulated = "" if precision.native_bfloat16(self.device) else "; emulated here, slower than float32"
            notes = [*notes, f"matrix products in {dtype} (precision: {config.precision}{emulated})"]
        index = {label: i for i, label in enumerate(self.classes)}
        targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
        train, validation = stratified_split(targets.tolist(), config.validation_fraction, config.seed)
        encoded = encode_texts(self.tokenizer, texts, config.windowing)
        self.prefix = frozen_prefix(self.model, encoded, self.pad, config.frozen_cache_megabytes)
        per_epoch = -(-len(train) // config.batch_size)
        total = per_epoch * config.epochs
        optimizer = torch.optim.AdamW(self._parameter_groups(), weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(config, per_epoch, total))
        rng = random.Random(config.seed)
        result = TrainedClassifier(
            self.model, self.tokenizer, self.classes, config, notes=list(notes), world_size=world.size, trained_in=dtype
        )
        # The encoder by its directory's name (a job's code names it base_model/, wherever it is extracted) and
        # the shapes of every weight, with the other settings but those that change no trained weight (a run
        # restarted with less memory for the cache, or without the ONNX form, resumes).
        settings = {
            **{name: value for name, value in asdict(config).items() if name not in RESULT_NEUTRAL},
            "precision": dtype,  # as resolved: `auto` is another run on other hardware
            "embeddings_model": Path(config.embeddings_model).name,
            "shapes": {name: list(value.shape) for name, value in self.model.state_dict().items()},
        }
        run_id = checkpoints.fingerprint(texts, labels, settings, world.size)
        lengths = text_lengths(encoded)
        progress = {"best_f1": -1.0, "best_loss": float("inf"), "best_state": None, "stale": 0, "stopped": False}
        first = 1
        saved = checkpoints.load(self.checkpoint_dir, run_id) if self.checkpoint_dir is not None else None
        if saved is not None:
            first = self._resume(saved, optimizer, schedule, rng, result, progress)
        self.reporter.start(config.epochs, per_epoch)
        for epoch in range(first, config.epochs + 1):
            if progress["stopped"]:
                break
            started = time.perf_counter()
            order = list(train)
            rng.shuffle(order)
            learning_rate = schedule.get_last_lr()[0]
            batches_of_epoch = length_buckets(order, lengths, config.batch_size, rng)
            train_loss, train_f1 = self._train_epoch(encoded, targets, batches_of_epoch, optimizer, schedule)
            train_seconds = time.perf_counter() - started
            validation_loss, metrics = self._evaluate(encoded, targets, validation) if world.main else (0.0, {})
            validation_loss = from_main(validation_loss, world)
            validation_f1 = from_main(metrics.get("f1", 0.0), world)
            if world.main:
                outcome = EpochResult(
                    epoch=epoch,
                    train_loss=train_loss,
                    validation_loss=validation_loss,
                    learning_rate=learning_rate,
                    train_examples=len(train),
                    train_seconds=train_seconds,
                    seconds=time.perf_counter() - started,
                    train_f1=train_f1,
                    **metrics,
                )
                result.history.append(outcome)
            if is_better(validation_f1, validation_loss, progress["best_f1"], progress["best_loss"]):
                progress.update(best_f1=validation_f1, best_loss=validation_loss, stale=0)
                result.best_epoch = epoch
                if world.main:
                    progress["best_state"] = copy.deepcopy(self.model.state_dict())
            else:
                progress["stale"] += 1
                if progress["stale"] >= config.early_stopping_patience and epoch < config.epochs:
                    progress["stopped"] = result.stopped_early = True
            self._checkpoint(epoch, run_id, optimizer, schedule, rng, result, progress)
            if world.main:
                self.reporter.epoch(result.history[-1])
        if progress["best_state"] is not None:
            self.model.load_state_dict(progress["best_state"])
        self.model.eval()
        if world.main:
            self.reporter.finish(_summary(result))
        return result

    def _checkpoint(self, epoch, run_id, optimizer, schedule, rng, result, progress) -> None:
        """Checkpoint the end of `epoch` (rank 0 writes it; every rank's RNG state goes in)."""
        if self.checkpoint_dir is None:
            return
        torch_rngs = gathered(torch.get_rng_state(), self.world)
        if not self.world.main:
            return
        state = {
            "fingerprint": run_id,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "shuffle_rng": rng.getstate(),
            "torch_rng": torch_rngs,
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "history": [outcome.as_dict() for outcome in result.history],
            "best_epoch": result.best_epoch,
            **progress,
        }
        checkpoints.save(self.checkpoint_dir, epoch, state)

    def _resume(self, saved, optimizer, schedule, rng, result, progress) -> int:
        """Restore a checkpoint's state; the first epoch still to train."""
        self.model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        rng.setstate(_as_random_state(saved["shuffle_rng"]))
        torch.set_rng_state(saved["torch_rng"][self.world.rank])
        if torch.cuda.is_available() and saved["cuda_rng"]:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        result.history = [EpochResult(**outcome) for outcome in saved["history"]]
        result.best_epoch = saved["best_epoch"]
        result.resumed_from = saved["epoch"]
        progress.update({name: saved[name] for name in ("best_f1", "best_loss", "best_state", "stale", "stopped")})
        result.stopped_early = bool(saved["stopped"])
        if self.world.main:
            print(f"resuming from the checkpoint of epoch {saved['epoch']}", flush=True)
        return saved["epoch"] + 1

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """The trainable encoder layers at `learning_rate`, the head at `head_learning_rate` (the schedule scales
        both alike)."""
        head = {id(parameter) for parameter in self.model.head.parameters()}
        encoder = [p for p in self.model.parameters() if p.requires_grad and id(p) not in head]
        groups = [{"params": list(self.model.head.parameters()), "lr": self.config.head_learning_rate}]
        return [{"params": encoder, "lr": self.config.learning_rate}, *groups] if encoder else groups

    def _train_epoch(self, encoded, targets, batches_of_epoch, optimizer, schedule) -> tuple[float, float]:
        """One epoch, batch by batch: the mean training loss and the macro-F1 of the batches' predictions. With
        several ranks each takes its share of every batch and the loss is the whole batch's mean (summed here,
        over the batch's size, times the ranks DDP averages over); the confusion counts are added up over ranks."""
        self.model.train()
        total, seen = 0.0, 0
        truth: list[int] = []
        predicted: list[int] = []
        for chunk in batches_of_epoch:
            mine = shard(chunk, self.world)
            learning_rate = schedule.get_last_lr()[0]
            optimizer.zero_grad(set_to_none=True)
            if mine:
                batch = collate(encoded, mine, self.pad)
                expected = targets[mine].to(self.device)
                logits = self._logits(batch, mine, self.forward)
                summed_loss = self.summed_loss(logits, expected)
                (summed_loss * self.world.size / len(chunk)).backward()
                value = summed_loss.item()
                truth += targets[mine].tolist()
                predicted += logits.argmax(dim=-1).tolist()
            else:  # fewer texts in the last batch than ranks: this rank adds nothing, but DDP still averages
                value = 0.0
                self._zero_backward()
            optimizer.step()
            schedule.step()
            total += value
            seen += len(mine)
            self.reporter.batch(value / max(1, len(mine)), learning_rate)
        classes = len(self.classes)
        counts = [cell for row in confusion_matrix(truth, predicted, range(classes)) for cell in row]
        total, seen, *counts = summed([total, float(seen), *map(float, counts)], self.world)
        matrix = [[int(counts[row * classes + column]) for column in range(classes)] for row in range(classes)]
        return total / seen, macro_f1_of(matrix)

    def _logits(self, batch: WindowBatch, texts: Sequence[int], forward: Any) -> torch.Tensor:
        """The logits of `batch` (the windows of `texts`) through `forward` (the model, or its DDP wrapper), the
        frozen layers' outputs reused when kept (`frozen`), in the run's precision; float32 logits."""
        replaying = self.prefix.replaying(texts) if self.prefix is not None else nullcontext()
        with precision.autocast(self.device, self.dtype), replaying:
            return forward(*batch.tensors(self.device), batch.windows_per_text).float()

    def _zero_backward(self) -> None:
        """A backward pass contributing zero gradient, so this rank joins DDP's gradient all-reduce."""
        zero = sum(parameter.sum() * 0.0 for parameter in self.model.parameters() if parameter.requires_grad)
        if self.world.distributed:
            # DDP reduces only through its own forward: take one on a one-token input, multiplied by zero.
            ids = torch.zeros((1, 1), dtype=torch.long, device=self.device)
            zero = zero + self.forward(ids, torch.ones_like(ids), None).sum() * 0.0
        zero.backward()

    @torch.no_grad()
    def _evaluate(self, encoded, targets, subset) -> tuple[float, dict[str, float]]:
        self.model.eval()
        total, predicted = 0.0, []
        subset = shortest_first(encoded, subset)
        for chosen, batch in batched(encoded, subset, 2 * self.config.batch_size, self.pad):
            expected = targets[list(chosen)]
            logits = self._logits(batch, chosen, self.model)
            total += self.loss(logits, expected.to(self.device)).item() * len(expected)
            predicted.extend(logits.argmax(dim=-1).tolist())
        truth = targets[list(subset)].tolist()
        return total / len(subset), classification_metrics(truth, predicted, len(self.classes))


def _as_random_state(saved: Any) -> tuple:
    """random.Random's state as setstate takes it (a checkpoint may hand back lists for its tuples)."""
    version, internal, gauss = saved
    return (version, tuple(internal), gauss)


def _summary(result: TrainedClassifier) -> str:
    best = result.best
    why = "stopped early: validation loss stopped improving" if result.stopped_early else "finished"
    text = (
        f"{why}; best epoch {best.epoch}: validation loss {best.validation_loss:.4f}, "
        f"accuracy {best.accuracy:.3f}, macro F1 {best.f1:.3f}"
    )
    return "; ".join([text, *result.notes])
