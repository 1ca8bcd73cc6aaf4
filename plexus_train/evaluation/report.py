"""report.html: one self-contained page (no file or network it needs: its images are data: URIs) with an
evaluation's figures, the per-class table, the confusion matrix, the training curves, the reliability plot and
the most confident mistakes. Every name, label and text is escaped: they are data, never markup."""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable, Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plexus_train.evaluation.run import Evaluation

MISTAKES = 20
TEXT_SHOWN = 300
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { padding: 0.25rem 0.6rem; border: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta td:first-child { color: #666; } .note { color: #666; } .warn { color: #a40; } img { max-width: 100%; }
"""


def data_uri(png: bytes) -> str:
    """An image the page carries itself: `data:image/png;base64,...`."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], numeric: Collection[int] = ()) -> str:
    """A table of already-escaped cells; columns in `numeric` align right."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(png: bytes | None, alt: str, missing: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{escape(alt)}">' if png else f'<p class="note">{escape(missing)}</p>'


def _f(value: float) -> str:
    return f"{value:.3f}"


def report_html(evaluation: Evaluation, images: Mapping[str, bytes | None], history: Path) -> str:
    """The page; `images` holds the PNGs `confusion`, `reliability` and `curves` (None: no training history at
    `history`)."""
    result = evaluation.figures
    title = f"{evaluation.scorecard} / {evaluation.score}"
    sample = evaluation.sample
    drawn = f"stratified sample of {sample[0]} of {evaluation.rows} rows, seed {sample[1]}" if sample else "every row"
    if evaluation.split:
        drawn = f"the {evaluation.split} split training held out: {result.examples} of {evaluation.rows} rows"
    meta = [
        ("model", evaluation.model),
        ("data", f"{evaluation.dataset.source} ({drawn})"),
        ("evaluated", evaluation.created.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    summary = [
        ("examples", str(result.examples)),
        ("accuracy", _f(result.accuracy)),
        ("Gwet's AC1", _f(result.ac1)),
        ("Cohen's kappa", _f(result.kappa)),
        (
            "macro precision / recall / F1",
            " / ".join(map(_f, (result.macro.precision, result.macro.recall, result.macro.f1))),
        ),
        (
            "weighted precision / recall / F1",
            " / ".join(map(_f, (result.weighted.precision, result.weighted.recall, result.weighted.f1))),
        ),
        ("expected calibration error", _f(result.calibration_error)),
    ]
    classes = [
        (
            escape(label) + ("" if label not in result.unknown else " <span class=warn>(unknown to the model)</span>"),
            str(s.support),
            str(s.predicted),
            _f(s.precision),
            _f(s.recall),
            _f(s.f1),
        )
        for label, s in zip(result.classes, result.scores, strict=True)
    ]
    confusion = [
        (f"<b>{escape(label)}</b>", *map(str, row)) for label, row in zip(result.classes, result.matrix, strict=True)
    ]
    mistakes = [
        (
            str(rank),
            escape(_clipped(evaluation.dataset.texts[i])),
            escape(evaluation.dataset.labels[i]),
            escape(evaluation.predicted[i]),
            _f(evaluation.answers[i]["confidence"]),
        )
        for rank, i in enumerate(evaluation.mistakes(MISTAKES), start=1)
    ]
    unknown = ""
    if result.unknown:
        listed = ", ".join(f"{escape(label)} ({n} rows)" for label, n in result.unknown.items())
        unknown = f'<p class="warn">Labels the model does not know, every row of them an error: {listed}</p>'
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}: evaluation</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}: evaluation</h1>",
        '<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{escape(v)}</td></tr>" for k, v in meta) + "</table>",
        "<h2>Figures</h2>",
        _table(("figure", "value"), ((escape(k), v) for k, v in summary), {1}),
        unknown,
        "<h2>Per class</h2>",
        _table(("class", "support", "predicted", "precision", "recall", "F1"), classes, {1, 2, 3, 4, 5}),
        "<h2>Confusion matrix</h2>",
        '<p class="note">Rows: the true class; columns: the predicted one.</p>',
        _image(images.get("confusion"), "confusion matrix", "no confusion matrix"),
        _table(("true \\ predicted", *map(escape, result.classes)), confusion, set(range(1, len(result.classes) + 1))),
        "<h2>Training curves</h2>",
        _image(
            images.get("curves"), "training curves: loss and macro-F1 per epoch", f"No training history at {history}."
        ),
        "<h2>Reliability</h2>",
        '<p class="note">How often the model is right at each confidence: on the diagonal when calibrated.</p>',
        _image(images.get("reliability"), "reliability plot", "no reliability plot"),
        f"<h2>The most confident mistakes ({MISTAKES} at most)</h2>",
        _table(("#", "text", "label", "predicted", "confidence"), mistakes, {0, 4})
        if mistakes
        else '<p class="note">No mistakes.</p>',
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _clipped(text: str) -> str:
    return text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…"
