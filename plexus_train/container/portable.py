"""A trained classifier in the form that answers without torch or transformers: the encoder, with the mean over
each window's real tokens, as an ONNX graph run by onnxruntime; the head's weights; the fast tokenizer's own
file read by the `tokenizers` library.

Why: before a first prediction torch and transformers' model code take ~7 s to import on a 2-core machine (torch
2.3 s; transformers' BERT modules pull in torch.distributed, dynamo and scipy), onnxruntime and tokenizers 0.3 s,
and onnxruntime runs a small encoder on a CPU a little faster than eager torch (docs/training.md). So `plexus
predict`, `plexus serve` and the endpoints load this form when the artifact has it and onnxruntime is there
(`inference.model_fn`); torch (`artifacts.load_classifier`, on the CPU as well) stays the fallback.

In the model directory:
  inference/encoder.onnx   ids and mask (windows, tokens) → one vector per window (windows, hidden)
  inference/head.npz       the head's weight and bias
  inference/portable.json  the format, the padding id, the tokenizer's one setting tokenizer.json lacks, and the
                           onnxruntime and difference from torch the check saw
The tokenizer is encoder/tokenizer.json, part of every artifact of a fast tokenizer.

Written with the rest of the artifacts (`export`): torch's TorchScript-based ONNX exporter traces the encoder (3 s
for MiniLM; the newer torch.export-based one takes 15 s, paid by every training run), then onnxruntime runs the
graph on probe batches of other shapes than the traced one, padded and not, and its window vectors and class
probabilities must match torch's (the tokenizer file's ids transformers' too). A form that does not match is not
written: training warns, and predictions use torch.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_train.container.errors import ContainerError, DamagedModel, damaged, first_line
from plexus_train.container.windows import WindowBatch, collate, encode_texts, pad_id

if TYPE_CHECKING:
    from plexus_train.container.artifacts import ModelMetadata
    from plexus_train.container.config import TrainingConfig
    from plexus_train.container.model import BERTClassifier

FORMAT_VERSION = 2  # 1: without hidden_size and split_special_tokens, never checked with the latter
PORTABLE = "inference"
GRAPH = "encoder.onnx"
HEAD = "head.npz"
MANIFEST = "portable.json"
TOKENIZER_FILE = Path("encoder") / "tokenizer.json"
OPSET = 17
RUNTIME_AT_LEAST = (1, 18)  # the packaged requirements' onnxruntime: older ones may not run every opset-17 graph
TOLERANCE = 1e-4  # largest difference allowed from torch, in window vectors and in class probabilities

# Probe texts for tracing and the check: lengths from one token to past a window; accents, scripts, emoji, runs
# of whitespace, capitals, digits; the tokenizer's special tokens are added inside one of them.
PROBES = (
    "ok",
    "The agent answered the customer's question about the invoice.",
    "Café déjà vu: naïve coöperation; Привет мир 你好世界 مرحبا",
    "REFUND 💸💸 now!!!   please\n\n\tthanks, 3:15pm (again) 404",
)


class ExportFailed(ContainerError):
    """The portable form could not be written or did not match torch: predictions will load torch."""


class FileTokenizer:
    """A fast tokenizer's tokenizer.json through the `tokenizers` library alone, answering what
    `windows.encode_texts` asks of a transformers tokenizer. Truncation and padding saved in the file are turned
    off (windows are cut by `windows`, as in training); `split_special_tokens`, which transformers keeps in
    tokenizer_config.json instead, comes from the manifest."""

    def __init__(self, path: Path, split_special_tokens: bool = False):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(path))
        self.backend.no_truncation()
        self.backend.no_padding()
        self.backend.encode_special_tokens = split_special_tokens

    def __call__(
        self, texts: str | list[str], add_special_tokens: bool = True, truncation: bool = False, verbose: bool = True
    ) -> dict[str, Any]:
        """`{"input_ids": ...}` for one text or a list, never truncated (`truncation` and `verbose`, transformers'
        switches for that, are accepted as `encode_texts` passes them)."""
        if truncation:
            raise ValueError("FileTokenizer does not truncate: windows.split_windows cuts texts")
        many = [texts] if isinstance(texts, str) else list(texts)
        ids = [encoding.ids for encoding in self.backend.encode_batch(many, add_special_tokens=add_special_tokens)]
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}


@dataclass
class PortableClassifier:
    """A classifier loaded for inference through onnxruntime (`load`)."""

    session: Any
    weight: Any  # numpy (classes, hidden)
    bias: Any  # numpy (classes,)
    tokenizer: FileTokenizer
    pad: int
    labels: list[str]
    config: TrainingConfig
    metadata: dict[str, Any]

    def probabilities(self, batch: WindowBatch) -> list[list[float]]:
        """Per text of the batch, its class probabilities."""
        return probabilities(self.session, self.weight, self.bias, batch, self.config.window_pooling).tolist()


def probabilities(session: Any, weight: Any, bias: Any, batch: WindowBatch, pooling: str) -> Any:
    """(texts, classes) numpy probabilities: the graph's window vectors, pooled per text (`pooled`), through the
    head, softmaxed."""
    import numpy

    feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    logits = pooled(session.run(["vectors"], feeds)[0], batch.windows_per_text, pooling) @ weight.T + bias
    exponents = numpy.exp(logits - logits.max(axis=1, keepdims=True))
    return exponents / exponents.sum(axis=1, keepdims=True)


def pooled(vectors: Any, windows_per_text: tuple[int, ...], pooling: str) -> Any:
    """`windows.pool_windows` for numpy arrays: each text's consecutive window vectors pooled element-wise."""
    import numpy

    if all(count == 1 for count in windows_per_text):
        return vectors
    groups = numpy.split(vectors, numpy.cumsum(windows_per_text)[:-1])
    reduce = numpy.mean if pooling == "mean" else numpy.max
    return numpy.stack([reduce(group, axis=0) for group in groups])


def usable(directory: Path) -> bool:
    """Whether predictions from `directory` should load its portable form: one of this format is there, and
    onnxruntime (RUNTIME_AT_LEAST or later) and tokenizers import. A manifest there but unreadable counts as
    usable where onnxruntime is, so that `load` names the damage; any other case is the torch form's."""
    manifest = directory / PORTABLE / MANIFEST
    if not manifest.is_file():
        return False
    try:
        written = json.loads(manifest.read_text(encoding="utf-8")).get("format_version")
    except (OSError, ValueError, AttributeError):
        written = FORMAT_VERSION
    return written == FORMAT_VERSION and _runtime_ready()


def _runtime_ready() -> bool:
    try:  # a broken install (a missing shared library, another numpy's ABI) is as good as none
        import onnxruntime
        import tokenizers  # noqa: F401
    except (ImportError, OSError):
        return False
    try:
        return tuple(int(part) for part in onnxruntime.__version__.split(".")[:2]) >= RUNTIME_AT_LEAST
    except ValueError:
        return False


def session_of(graph: Path) -> Any:
    """An onnxruntime session of `graph` on the CPU, as many threads as OMP_NUM_THREADS says (`threads`), errors
    only in its log."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads(os.environ.get("OMP_NUM_THREADS", ""))
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def threads(setting: str) -> int:
    """onnxruntime's intra-op threads for an OMP_NUM_THREADS value, read as OpenMP reads it (the first of a list);
    0, one per core, when it is unset or not a positive number.

    Example: `threads("2,1") == 2` and `threads("many") == 0`
    """
    try:
        return max(0, int(setting.split(",")[0]))
    except ValueError:
        return 0


def load(directory: Path, metadata: ModelMetadata) -> PortableClassifier:
    """The portable form in `directory` (`usable`); a part that cannot be read is one DamagedModel naming it."""
    import numpy

    here = directory / PORTABLE

    def unreadable(part: str | Path, exc: BaseException) -> DamagedModel:
        return damaged(directory, f"{Path(part).as_posix()} cannot be loaded ({first_line(exc)})")

    try:
        manifest = json.loads((here / MANIFEST).read_text(encoding="utf-8"))
        pad, hidden = int(manifest["pad_token_id"]), int(manifest["hidden_size"])
        split_special_tokens = bool(manifest["split_special_tokens"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise unreadable(f"{PORTABLE}/{MANIFEST}", exc) from None
    classes = len(metadata.labels)
    try:
        with numpy.load(here / HEAD) as head:
            weight, bias = head["weight"], head["bias"]
        if weight.shape != (classes, hidden) or bias.shape != (classes,):
            raise ValueError(f"a head of shape {weight.shape} for {classes} labels and {hidden} hidden units")
    except Exception as exc:  # numpy raises OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError...
        raise unreadable(f"{PORTABLE}/{HEAD}", exc) from None
    try:
        session = session_of(here / GRAPH)
        width = session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != hidden:
            raise ValueError(f"a graph of {width} hidden units for a head of {hidden}")
    except Exception as exc:  # onnxruntime raises its own Fail, InvalidGraph, NoSuchFile...
        raise unreadable(f"{PORTABLE}/{GRAPH}", exc) from None
    try:
        tokenizer = FileTokenizer(directory / TOKENIZER_FILE, split_special_tokens)
    except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
        raise unreadable(TOKENIZER_FILE, exc) from None
    return PortableClassifier(session, weight, bias, tokenizer, pad, metadata.labels, metadata.config, metadata.raw)


def export(model: BERTClassifier, tokenizer: Any, config: TrainingConfig, directory: Path) -> None:
    """Write the portable form of `model` (whose tokenizer is saved at `directory / TOKENIZER_FILE`) into
    `directory / PORTABLE`; on any failure nothing of it is left and ExportFailed says why."""
    target = directory / PORTABLE
    try:
        _export(model, tokenizer, config, directory, target)
    except Exception as exc:  # the exporter and onnxruntime fail in many ways; each means "no portable form"
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, ExportFailed):
            raise
        raise ExportFailed(f"{type(exc).__name__}: {first_line(exc)}") from exc


def _export(model: BERTClassifier, tokenizer: Any, config: TrainingConfig, directory: Path, target: Path) -> None:
    import copy

    import numpy
    import onnxruntime

    if not (directory / TOKENIZER_FILE).is_file():
        raise ExportFailed(f"the tokenizer has no {TOKENIZER_FILE.name} (not a fast tokenizer)")
    split_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    specials = " ".join(getattr(tokenizer, "all_special_tokens", []))
    texts = [*PROBES, f"hello {specials} refund", " ".join(PROBES * (config.max_tokens // 4 + 1))]
    ids = encode_texts(tokenizer, texts, config.windowing)
    if encode_texts(FileTokenizer(directory / TOKENIZER_FILE, split_special_tokens), texts, config.windowing) != ids:
        raise ExportFailed(f"{TOKENIZER_FILE} alone tokenizes the probe texts differently from transformers")
    pad, longest = pad_id(tokenizer), len(texts) - 1
    traced = collate(ids, [1, 0], pad)  # two widths: the graph must not keep the traced shape
    # Padded and not, one row and several, up to a whole window (and, with several windows, pooled).
    checks = [collate(ids, order, pad) for order in ([longest, 2, 0, 1, 4], [0], [longest], [longest, longest], [3])]

    from plexus_train.container.model import WindowVectors

    encoder = WindowVectors(model if model.head.weight.device.type == "cpu" else copy.deepcopy(model).cpu())
    was_training = encoder.classifier.training
    encoder.eval()  # the wrapper too: the exporter puts back the mode it found, and the check needs eval's
    try:
        with _eager_attention(encoder.classifier.encoder):
            _write_graph(encoder, traced, target / GRAPH)
        head = encoder.classifier.head
        weight, bias = head.weight.detach().numpy(), head.bias.detach().numpy()
        session = session_of(target / GRAPH)
        difference = _difference_from_torch(encoder, session, weight, bias, checks, config.window_pooling)
    finally:
        encoder.classifier.train(was_training)
    if not difference <= TOLERANCE:
        raise ExportFailed(f"the ONNX form's answers differ from torch's by {difference:.2g}")
    numpy.savez(target / HEAD, weight=weight, bias=bias)
    manifest = {
        "format_version": FORMAT_VERSION,
        "pad_token_id": pad,
        "hidden_size": int(weight.shape[1]),
        "split_special_tokens": split_special_tokens,
        "checked_with_onnxruntime": onnxruntime.__version__,
        "largest_difference": difference,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


@contextmanager
def _eager_attention(encoder: Any) -> Iterator[None]:
    """Within: the encoder computes attention as plain matrix products and a softmax (transformers' `eager`),
    whose traced graph onnxruntime runs faster than one of torch's fused attention (MiniLM on this machine, 32
    windows of 256 tokens: 2,262 against 2,039 tokens/s; of 30 tokens: 2,890 against 2,628). The same arithmetic:
    the check compares the graph with the encoder's own attention afterwards."""
    before = getattr(getattr(encoder, "config", None), "_attn_implementation", None)
    switch = getattr(encoder, "set_attn_implementation", None)
    if switch is None or before in (None, "eager"):
        yield
        return
    switch("eager")
    try:
        yield
    finally:
        switch(before)


def _write_graph(encoder: Any, traced: WindowBatch, graph: Path) -> None:
    """Trace `encoder` (a `model.WindowVectors`) on `traced` into `graph`, any number of windows and tokens."""
    import torch

    graph.parent.mkdir(parents=True, exist_ok=True)
    axes = {"input_ids": {0: "windows", 1: "tokens"}, "attention_mask": {0: "windows", 1: "tokens"}}
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns that it is deprecated and that tracing may miss branches: the check is the answer.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            traced.tensors("cpu"),
            str(graph),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["vectors"],
            dynamic_axes={**axes, "vectors": {0: "windows"}},
            opset_version=OPSET,
        )


def _difference_from_torch(
    encoder: Any, session: Any, weight: Any, bias: Any, checks: list[WindowBatch], pooling: str
) -> float:
    """The largest difference, over `checks`, between the graph's window vectors and torch's, and between the
    class probabilities the portable form answers with the saved `pooling` (`probabilities`) and the torch
    model's."""
    import numpy
    import torch

    classifier = encoder.classifier
    difference = 0.0
    for batch in checks:
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        with torch.no_grad():
            vectors = encoder(*batch.tensors("cpu")).numpy()
            expected = torch.softmax(classifier.logits(batch), dim=-1).numpy()
        answered = probabilities(session, weight, bias, batch, pooling)
        for ours, theirs in ((session.run(["vectors"], feeds)[0], vectors), (answered, expected)):
            difference = max(difference, float(numpy.abs(ours - theirs).max()))
    return difference
