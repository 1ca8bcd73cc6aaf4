"""Texts as windows of tokens, batched for the encoder: the one place training and inference turn text into what
the encoder sees, so both see exactly the same.

A text is tokenized whole (no truncation), then cut into consecutive windows of `max_tokens` tokens, the
encoder's special tokens ([CLS] … [SEP]) included in each. At most `max_windows` windows are kept (0: every
window): the first ones, or with `from_end` the last ones (windows are then aligned on the text's end, so the last
window is full and the first kept one may be short), always in document order. One window from the start is
plain truncation, the classic single-window classifier.

The classifier encodes every window and pools each window's token vectors into one (mean over its real
tokens), then the windows of a text into one vector (`pool_windows`: element-wise max by default, as Plexus's
sliding-window classifier pools across windows, or mean).

Example, windows of 4 tokens (2 for the text) over the tokens a b c d e:
    from the start, 2 windows:  [CLS] a b [SEP], [CLS] c d [SEP]
    from the end, 2 windows:    [CLS] b c [SEP], [CLS] d e [SEP]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and numpy are imported where used: TrainingConfig (and so the host side) imports this module
    import numpy
    import torch

POOLINGS = ("max", "mean")


@dataclass(frozen=True)
class Windowing:
    """+ max_tokens: tokens per window, special tokens included
    + max_windows: windows kept per text; 0 keeps every window
    + from_end: keep the last windows instead of the first
    + pooling: how a text's window vectors become one: `max` (element-wise) or `mean`
    """

    max_tokens: int
    max_windows: int = 1
    from_end: bool = False
    pooling: str = "max"


# Per text, its windows; per window, its token ids (special tokens included).
EncodedText = list[list[int]]


def split_windows(ids: Sequence[int], room: int, windowing: Windowing) -> list[list[int]]:
    """The text's token ids (without special tokens) cut into windows of at most `room` ids, keeping at most
    `windowing.max_windows` of them (0: all), from the start or the end, in document order. A text without
    tokens is one empty window.

    Example: `split_windows([1, 2, 3, 4, 5], 2, Windowing(4, 2, from_end=True)) == [[2, 3], [4, 5]]`
    """
    room = max(1, room)
    if not ids:
        return [[]]
    if windowing.from_end:
        ends = range(len(ids), 0, -room)
        windows = [list(ids[max(0, end - room) : end]) for end in ends]
        kept = windows[: windowing.max_windows] if windowing.max_windows else windows
        return kept[::-1]
    starts = range(0, len(ids), room)
    windows = [list(ids[start : start + room]) for start in starts]
    return windows[: windowing.max_windows] if windowing.max_windows else windows


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text ([CLS] and [SEP] for BERT, <s> and </s> for RoBERTa),
    read from how it encodes a probe word."""
    inner = tokenizer("a", add_special_tokens=False)["input_ids"]
    whole = tokenizer("a")["input_ids"]
    for start in range(len(whole) - len(inner) + 1):
        if whole[start : start + len(inner)] == inner:
            return list(whole[:start]), list(whole[start + len(inner) :])
    return [], []


def pad_id(tokenizer: Any) -> int:
    """The id batches are padded with: the tokenizer's padding token, else 0 (masked out either way)."""
    return tokenizer.pad_token_id or 0


def encode_texts(tokenizer: Any, texts: Sequence[str], windowing: Windowing) -> list[EncodedText]:
    """Each text as its windows of token ids, special tokens included (what `collate` batches)."""
    before, after = special_tokens(tokenizer)
    room = windowing.max_tokens - len(before) - len(after)
    # Whole texts: the windows are cut here, so the tokenizer's warning about texts past the model's limit is moot.
    ids = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [[before + window + after for window in split_windows(text, room, windowing)] for text in ids]


@dataclass(frozen=True)
class WindowBatch:
    """Windows of several texts, padded to the longest window of the batch, as int64 numpy arrays: what torch
    (`tensors`) and onnxruntime (`portable`) both take.

    + input_ids, attention_mask: (windows, tokens)
    + windows_per_text: how many consecutive rows belong to each text, in order
    """

    input_ids: numpy.ndarray
    attention_mask: numpy.ndarray
    windows_per_text: tuple[int, ...]

    def tensors(self, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The ids and the mask as torch tensors on `device` (sharing memory with the arrays on the CPU)."""
        import torch

        return torch.from_numpy(self.input_ids).to(device), torch.from_numpy(self.attention_mask).to(device)


def padded_width(windows: Sequence[Sequence[int]]) -> int:
    """The width `collate` pads `windows` to: the longest, at least 1."""
    return max([1, *(len(window) for window in windows)])


def collate(encoded: Sequence[EncodedText], order: Sequence[int], pad: int) -> WindowBatch:
    """The windows of the texts `order` picks from `encoded`, in that order, as one padded batch."""
    import numpy

    windows = [window for index in order for window in encoded[index]]
    width = padded_width(windows)
    ids = numpy.full((len(windows), width), pad, dtype=numpy.int64)
    mask = numpy.zeros((len(windows), width), dtype=numpy.int64)
    for row, window in enumerate(windows):
        ids[row, : len(window)] = window
        mask[row, : len(window)] = 1
    return WindowBatch(ids, mask, tuple(len(encoded[index]) for index in order))


def batched(
    encoded: Sequence[EncodedText], order: Sequence[int], size: int, pad: int, max_tokens: int = 0
) -> Iterator[tuple[Sequence[int], WindowBatch]]:
    """`order` in chunks of at most `size` texts, each with its padded batch of windows; with `max_tokens`, a chunk
    also ends before its padded batch (windows × longest window) would pass that many tokens (one text alone may).

    Example: windows of 3, 3 and 5 tokens with `max_tokens=6` make the chunks [0, 1] and [2]."""
    chunk: list[int] = []
    windows = longest = 0
    for text in order:
        width = padded_width(encoded[text])
        full = len(chunk) == size or (max_tokens and (windows + len(encoded[text])) * max(longest, width) > max_tokens)
        if chunk and full:
            yield chunk, collate(encoded, chunk, pad)
            chunk, windows, longest = [], 0, 0
        chunk.append(text)
        windows, longest = windows + len(encoded[text]), max(longest, width)
    if chunk:
        yield chunk, collate(encoded, chunk, pad)


def length_buckets(
    order: Sequence[int], lengths: Sequence[int], size: int, rng: Any, pool: int = 50
) -> list[list[int]]:
    """`order` as batches of `size` texts of similar length, in a random order: each run of `pool` batches' worth of
    (already shuffled) texts is sorted by length and cut into batches, and the batches are shuffled with `rng`. A
    batch is padded to its longest window, so similar lengths waste little on padding, and the shuffle keeps
    batches from running short to long. `lengths[i]`: the tokens of text i (all its windows).

    Example: `length_buckets([0, 1, 2, 3], [5, 1, 4, 2], 2, random.Random(0), pool=2)` holds `[1, 3]` and `[2, 0]`.
    """
    batches: list[list[int]] = []
    span = size * pool
    for start in range(0, len(order), span):
        run = sorted(order[start : start + span], key=lambda index: lengths[index])
        batches += [run[at : at + size] for at in range(0, len(run), size)]
    rng.shuffle(batches)
    return batches


def text_lengths(encoded: Sequence[EncodedText]) -> list[int]:
    """The tokens of each text, all its windows together: what a batch of it costs."""
    return [sum(len(window) for window in windows) for windows in encoded]


def shortest_first(encoded: Sequence[EncodedText], subset: Sequence[int]) -> list[int]:
    """`subset` in order of text length, so that batches cut from it in turn pad little (evaluation and
    prediction, which need no shuffle)."""
    lengths = text_lengths(encoded)
    return sorted(subset, key=lengths.__getitem__)


def pool_windows(vectors: torch.Tensor, windows_per_text: Sequence[int], pooling: str = "max") -> torch.Tensor:
    """(windows, hidden) window vectors → (texts, hidden): each text's consecutive windows pooled element-wise
    (`max` or `mean`); a text of one window keeps its vector as is."""
    import torch

    if all(count == 1 for count in windows_per_text):
        return vectors
    groups = torch.split(vectors, list(windows_per_text))
    if pooling == "mean":
        return torch.stack([group.mean(dim=0) for group in groups])
    return torch.stack([group.max(dim=0).values for group in groups])
