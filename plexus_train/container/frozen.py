"""The frozen bottom of the encoder, computed once per text: with only the top N layers fine-tuned, what the frozen
layers (and the embeddings under them) make of a window never changes during training, so the output of the last
frozen layer is computed the first time a text is met, kept within a memory budget, and every later pass (each
epoch's training and validation) runs only the trainable layers on it.

The frozen layers always run in eval mode (`BERTClassifier.train`), so a kept output is exactly what a full forward
pass would compute, dropout included; texts past the budget are recomputed each time, as without the cache.

Replaying goes through the encoder's own forward, with each frozen layer answering the kept output instead of
computing: the encoder still builds its attention mask and runs its trainable layers (and any final norm) its own
way. That holds for encoders whose layer loop only calls the layers one after another (`CACHEABLE`); one that
works between layers (DeBERTa-v2's convolution after the first) runs whole every pass instead. The embeddings are
still looked up each pass, a small cost next to a layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from plexus_train.container.model import BERTClassifier, encoder_layers
from plexus_train.container.windows import EncodedText, collate

BYTES_PER_MEGABYTE = 1 << 20
# Encoder families (`config.model_type`) whose layer loop does nothing between layers but pass on the states.
CACHEABLE = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert"})


class _Captured(Exception):
    """Raised by the last frozen layer's hook: its output is all a prefix pass needs."""


class FrozenPrefix:
    """The kept outputs of a model's frozen encoder layers, per text and window, up to `budget_bytes`.

    + model: its frozen layers are the first `BERTClassifier.frozen_layers()` ones
    + encoded: every text of the run as windows (`windows.encode_texts`), indexed as the trainer indexes them
    + pad: the tokenizer's padding id
    """

    def __init__(self, model: BERTClassifier, encoded: Sequence[EncodedText], pad: int, budget_bytes: int):
        self.model = model
        self.layers = encoder_layers(model.encoder)[: model.frozen_layers()]
        self.encoded = encoded
        self.pad = pad
        self.budget = budget_bytes
        self.used = 0
        self.kept: dict[int, list[torch.Tensor]] = {}
        self.tuple_length = 0  # how many items a layer's output tuple holds (0: a layer returns the states alone)

    def states(self, texts: Sequence[int]) -> torch.Tensor:
        """(windows, tokens, hidden): the last frozen layer's output for every window of `texts`, in order,
        padded with zeros to the longest window (what `collate` pads the ids to; padding is masked out above)."""
        missing = [text for text in dict.fromkeys(texts) if text not in self.kept]
        fresh = self._compute(missing) if missing else {}
        windows = [window for text in texts for window in self.kept.get(text) or fresh[text]]
        return pad_sequence(windows, batch_first=True)

    @torch.no_grad()
    def _compute(self, texts: list[int]) -> dict[int, list[torch.Tensor]]:
        """Run the encoder up to its last frozen layer on `texts`; keep each text's outputs while the budget
        allows."""
        batch = collate(self.encoded, texts, self.pad)
        device = self.model.head.weight.device
        captured: dict[str, Any] = {}

        def capture(module: Any, args: Any, output: Any) -> None:
            captured["output"] = output
            raise _Captured

        hook = self.layers[-1].register_forward_hook(capture)
        try:
            input_ids, attention_mask = batch.tensors(device)
            self.model.encoder(input_ids=input_ids, attention_mask=attention_mask)
        except _Captured:
            pass
        finally:
            hook.remove()
        output = captured["output"]
        self.tuple_length = len(output) if isinstance(output, tuple) else 0
        hidden = (output[0] if self.tuple_length else output).cpu()
        rows = iter(range(hidden.shape[0]))
        result = {}
        for text in texts:
            windows = self.encoded[text]
            result[text] = [hidden[next(rows), : len(window)].clone() for window in windows]
            size = sum(state.numel() * state.element_size() for state in result[text])
            if self.used + size <= self.budget:
                self.kept[text] = result[text]
                self.used += size
        return result

    @contextmanager
    def replaying(self, texts: Sequence[int]) -> Iterator[None]:
        """Within: a forward pass of the windows of `texts` (in order, as `collate` batches them) takes the frozen
        layers' outputs from those kept (computed now for texts not yet kept): each frozen layer answers them at
        once, shaped as its own output (a tuple's other items, attention weights and the like, None). Afterwards
        each layer has its own forward again, including one set on the instance by someone else."""
        states = self.states(texts).to(self.model.head.weight.device)
        answer = (states, *[None] * (self.tuple_length - 1)) if self.tuple_length else states
        before = [layer.__dict__.get("forward") for layer in self.layers]
        for layer in self.layers:
            layer.forward = lambda *args, **kwargs: answer
        try:
            yield
        finally:
            for layer, forward in zip(self.layers, before, strict=True):
                if forward is None:
                    del layer.forward
                else:
                    layer.forward = forward


def frozen_prefix(
    model: BERTClassifier, encoded: Sequence[EncodedText], pad: int, budget_megabytes: int
) -> FrozenPrefix | None:
    """A FrozenPrefix for the model's frozen layers, or None when nothing is frozen under the trainable layers, the
    budget is 0 or the encoder is not of a CACHEABLE family (every pass then runs the whole encoder)."""
    family = getattr(getattr(model.encoder, "config", None), "model_type", None)
    if budget_megabytes <= 0 or model.frozen_layers() == 0 or family not in CACHEABLE:
        return None
    return FrozenPrefix(model, encoded, pad, budget_megabytes * BYTES_PER_MEGABYTE)
