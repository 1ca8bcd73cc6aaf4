"""The report's pictures, drawn with matplotlib's Agg canvas (no display, no pyplot state) and returned as PNG
bytes: the confusion matrix, the training curves, the reliability plot."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from plexus_train.evaluation.metrics import ReliabilityBin

DPI = 100
MAX_PIXELS = 2000


def confusion_size(classes: int) -> tuple[int, int]:
    """confusion.png's (width, height) in pixels: 60 a class beyond a base, so labels stay legible, capped.

    Example: `confusion_size(3) == (580, 500)`
    """
    return min(400 + 60 * classes, MAX_PIXELS), min(320 + 60 * classes, MAX_PIXELS)


def _figure(width: int, height: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def confusion_png(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """The confusion matrix: rows the true class, columns the predicted one, each cell its count, shaded by the
    share of its row (so a rare class's errors show as clearly as a common one's)."""
    figure = _figure(*confusion_size(len(classes)))
    axes = figure.add_subplot()
    shares = [[cell / (sum(row) or 1) for cell in row] for row in matrix]
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    ticks = range(len(classes))
    axes.set_xticks(ticks, [_short(label) for label in classes], rotation=45, ha="right")
    axes.set_yticks(ticks, [_short(label) for label in classes])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center", color="white" if shares[i][j] > 0.5 else "black")
    return _png(figure)


def curves_png(history: Sequence[dict[str, Any]]) -> bytes:
    """Training curves per epoch: training and validation loss; validation macro-F1 (and training macro-F1 when
    the history records it as `train_f1`)."""
    figure = _figure(900, 360)
    loss, f1 = figure.subplots(1, 2)
    epochs = [entry["epoch"] for entry in history]
    loss.plot(epochs, [entry["train_loss"] for entry in history], marker="o", label="training")
    loss.plot(epochs, [entry["validation_loss"] for entry in history], marker="o", label="validation")
    loss.set(title="loss", xlabel="epoch")
    recorded = all("train_f1" in entry for entry in history)
    if recorded:
        f1.plot(epochs, [entry["train_f1"] for entry in history], marker="o", label="training")
    f1.plot(epochs, [entry["f1"] for entry in history], marker="o", label="validation")
    title = "macro-F1" if recorded else "macro-F1 (the history records validation's only)"
    f1.set(title=title, xlabel="epoch", ylim=(0, 1.02))
    for axes in (loss, f1):
        axes.set_xticks(epochs)
        axes.legend()
        axes.grid(alpha=0.3)
    return _png(figure)


def reliability_png(bins: Sequence[ReliabilityBin]) -> bytes:
    """The reliability diagram: each confidence bin's accuracy against the diagonal of perfect calibration,
    and below it how many predictions fell in each bin."""
    figure = _figure(520, 560)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    width = bins[0].high - bins[0].low if bins else 0.1
    centers = [(b.low + b.high) / 2 for b in bins]
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfectly calibrated")
    top.bar(centers, [b.accuracy for b in bins], width=width * 0.9, alpha=0.8, label="accuracy in the bin")
    filled = [b for b in bins if b.count]
    top.plot([b.confidence for b in filled], [b.accuracy for b in filled], "o", color="black", label="mean confidence")
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title="reliability")
    top.legend(loc="upper left")
    bottom.bar(centers, [b.count for b in bins], width=width * 0.9, color="gray")
    bottom.set(xlabel="confidence", ylabel="predictions")
    return _png(figure)


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
