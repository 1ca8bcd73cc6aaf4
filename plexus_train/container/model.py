"""BERTClassifier: a Hugging Face encoder over each window of a text, each window mean-pooled, the windows of a
text pooled into one vector (`windows.pool_windows`), then dropout and a linear head for any number of classes.
Only the encoder's last N layers are fine-tuned: small data cannot move a whole encoder well, and frozen layers
cost no optimizer state."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plexus_train.container.config import looks_like_path
from plexus_train.container.errors import ContainerError
from plexus_train.container.windows import WindowBatch, pool_windows


class BERTClassifier(nn.Module):
    """+ encoder: a transformers AutoModel
    + classes: number of labels (2 or more)
    + dropout: dropout before the head
    + pooling: how a text's window vectors become one (`max` or `mean`; `windows.pool_windows`)
    """

    def __init__(self, encoder: Any, classes: int, dropout: float, pooling: str = "max"):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, classes)
        self.pooling = pooling

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, windows_per_text: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Logits, shape (texts, classes), from (windows, tokens) ids and masks whose consecutive rows are the
        windows of each text (`windows_per_text`; None: one window per text). Mean pooling over real tokens suits
        both BERT-style encoders and sentence encoders (MiniLM), whose [CLS] token is not trained as a summary."""
        pooled = self.window_vectors(input_ids, attention_mask)
        if windows_per_text is not None:
            pooled = pool_windows(pooled, windows_per_text, self.pooling)
        return self.head(self.dropout(pooled))

    def window_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(windows, hidden): each window's token vectors averaged over its real tokens."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def logits(self, batch: WindowBatch) -> torch.Tensor:
        """Logits of a batch of windowed texts (`windows.collate`), on the model's device: the one call training,
        validation and the inference handlers make."""
        return self(*batch.tensors(self.head.weight.device), batch.windows_per_text)

    def train(self, mode: bool = True) -> BERTClassifier:
        """Train mode for what trains; the frozen parts of the encoder stay in eval mode (no dropout), so they
        compute the same for a text every time (what `frozen.FrozenPrefix` keeps)."""
        super().train(mode)
        for module in _frozen_modules(self.encoder):
            module.eval()
        return self

    def frozen_layers(self) -> int:
        """How many of the encoder's first layers are frozen with everything below them: their output for a
        window never changes while training. 0 when any part of the encoder outside its layers trains."""
        blocks = encoder_layers(self.encoder)
        inside = {id(parameter) for block in blocks for parameter in block.parameters()}
        if any(p.requires_grad for p in self.encoder.parameters() if id(p) not in inside):
            return 0
        trainable = [any(p.requires_grad for p in block.parameters()) for block in blocks]
        return trainable.index(True) if True in trainable else len(blocks)

    def freeze_all_but_last(self, layers: int) -> None:
        """Freeze the encoder except its last `layers` layers; asking for all of them unfreezes everything."""
        blocks = encoder_layers(self.encoder)
        everything = layers >= len(blocks)
        for parameter in self.encoder.parameters():
            parameter.requires_grad = everything
        for block in blocks[len(blocks) - layers :] if layers > 0 else []:
            for parameter in block.parameters():
                parameter.requires_grad = True


class WindowVectors(nn.Module):
    """A classifier's encoder alone, answering `BERTClassifier.window_vectors`: what `portable` exports."""

    def __init__(self, classifier: BERTClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier.window_vectors(input_ids, attention_mask)


def _frozen_modules(module: nn.Module) -> list[nn.Module]:
    """The largest submodules of `module` whose parameters are all frozen (a module without parameters belongs to
    its parent)."""
    found = []
    for child in module.children():
        parameters = list(child.parameters())
        if parameters and not any(p.requires_grad for p in parameters):
            found.append(child)
        elif parameters:
            found += _frozen_modules(child)
    return found


def encoder_layers(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's stack of transformer layers (`encoder.layer` in BERT, `transformer.layer` in DistilBERT):
    the longest ModuleList named `layer` or `layers`."""
    stacks = [
        module
        for name, module in encoder.named_modules()
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers")
    ]
    if not stacks:
        raise ValueError(f"cannot find the transformer layers of {type(encoder).__name__}")
    return list(max(stacks, key=len))


# Common words in many languages' scripts and digits: a real vocabulary knows some of them.
PROBE_TEXT = "the a of and to is in it you i 1 2 3 hello world . , der la le de que и в 的 是"


def check_tokenizer(tokenizer: Any, vocab_size: int | None, where: str) -> None:
    """Refuse a tokenizer that would turn text into [UNK]s: one far smaller than the encoder's vocabulary (what
    transformers builds from a directory without tokenizer files), or one that knows none of a probe's words."""
    size = len(tokenizer)
    if vocab_size and size * 2 < vocab_size:
        raise ContainerError(
            f"{where}: the tokenizer has {size} tokens but the encoder's vocabulary has {vocab_size} "
            "(are the tokenizer files, e.g. tokenizer.json or vocab.txt, missing?)"
        )
    unknown = getattr(tokenizer, "unk_token_id", None)
    ids = tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    if unknown is not None and ids and all(i == unknown for i in ids):
        raise ContainerError(f"{where}: the tokenizer turns every word of a probe text into its unknown token")


# What architectures call the dropout of their attention probabilities (BERT, RoBERTa, MiniLM...; DistilBERT).
ATTENTION_DROPOUTS = ("attention_probs_dropout_prob", "attention_dropout")


def load_encoder(name: str, attention_dropout: float | None = None) -> tuple[Any, Any]:
    """The encoder and its tokenizer, from a local directory or a Hugging Face id (which downloads unless
    HF_HUB_OFFLINE=1 keeps it to the local cache), the dropout of its attention probabilities set to
    `attention_dropout` (None: the model's own). Failures, a name that looks like a missing directory and a
    tokenizer without a vocabulary become one ContainerError naming the model."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging

    if not _exists(name) and looks_like_path(name):
        raise ContainerError(f"cannot load embeddings model {name!r}: no such local model directory {name}")
    logging.disable_progress_bar()
    try:
        settings = AutoConfig.from_pretrained(name)
        for setting in ATTENTION_DROPOUTS if attention_dropout is not None else ():
            if hasattr(settings, setting):
                setattr(settings, setting, attention_dropout)
        encoder, tokenizer = AutoModel.from_pretrained(name, config=settings), AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContainerError(f"cannot load embeddings model {name!r}: {first}") from exc
    check_tokenizer(tokenizer, getattr(encoder.config, "vocab_size", None), f"embeddings model {name}")
    return encoder, tokenizer


def _exists(name: str) -> bool:
    try:
        return Path(name).expanduser().exists()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        return False
