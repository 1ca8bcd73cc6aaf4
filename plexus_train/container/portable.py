"""A trained classifier in the form that answers without torch or transformers: the encoder, with the mean over
each window's real tokens, as an ONNX graph run by onnxruntime; the head's weights; the fast tokenizer's own
file read by the `tokenizers` library.

Why: before a first prediction torch and transformers' model code take ~7 s to import on a 2-core machine (torch
2.3 s; transformers' BERT modules pull in torch.distributed, dynamo and scipy), onnxruntime and tokenizers 0.3 s,
and onnxruntime runs a small encoder on a CPU a little faster than eager torch (docs/training.md). So `plexus
predict`, `plexus serve` and the endpoints load this form when the artifact has it (`inference.model_fn`);
torch (`artifacts.load_classifier`) stays the fallback, and is what a GPU uses.

In the model directory:
  inference/encoder.onnx   ids and mask (windows, tokens) → one vector per window (windows, hidden)
  inference/head.npz       the head's weight and bias
  inference/portable.json  the format, the padding id, and how closely the graph matched torch when written
The tokenizer is encoder/tokenizer.json, part of every artifact of a fast tokenizer.

Written with the rest of the artifacts (`export`): torch's TorchScript-based ONNX exporter traces the encoder (3 s
for MiniLM; the newer torch.export-based one takes 15 s, paid by every training run), then onnxruntime runs the
graph on probe batches of other shapes than the traced one, padded and not, and its vectors must match torch's
(the tokenizer's ids too). A graph that does not match is not written: training warns, and predictions use torch.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexus_train.container.errors import ContainerError, DamagedModel
from plexus_train.container.windows import WindowBatch, collate, encode_texts

if TYPE_CHECKING:
    from plexus_train.container.artifacts import ModelMetadata
    from plexus_train.container.config import TrainingConfig
    from plexus_train.container.model import BERTClassifier

FORMAT_VERSION = 1
PORTABLE = "inference"
GRAPH = "encoder.onnx"
HEAD = "head.npz"
MANIFEST = "portable.json"
TOKENIZER_FILE = Path("encoder") / "tokenizer.json"
OPSET = 17  # onnxruntime 1.16 and later run it
TOLERANCE = 1e-4  # largest difference allowed between the graph's window vectors and torch's
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")  # present where an NVIDIA GPU's driver is loaded

# Probe texts for tracing and the check: several lengths (one fills a window), several scripts.
PROBES = (
    "ok",
    "The agent answered the customer's question about the invoice.",
    "der la le de que и в 的 是 hello world 1 2 3 . ,",
)


class ExportFailed(ContainerError):
    """The portable form could not be written or did not match torch: predictions will load torch."""


class FileTokenizer:
    """A fast tokenizer's tokenizer.json through the `tokenizers` library alone, answering what
    `windows.encode_texts` asks of a transformers tokenizer: `tokenizer(texts, add_special_tokens=...)["input_ids"]`.
    Truncation and padding saved in the file are turned off: windows are cut by `windows`, as in training."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(path))
        self.backend.no_truncation()
        self.backend.no_padding()

    def __call__(self, texts: str | list[str], add_special_tokens: bool = True, **_: Any) -> dict[str, Any]:
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
        import numpy

        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        vectors = self.session.run(["vectors"], feeds)[0]
        logits = pooled(vectors, batch.windows_per_text, self.config.window_pooling) @ self.weight.T + self.bias
        exponents = numpy.exp(logits - logits.max(axis=1, keepdims=True))
        return (exponents / exponents.sum(axis=1, keepdims=True)).tolist()


def pooled(vectors: Any, windows_per_text: tuple[int, ...], pooling: str) -> Any:
    """`windows.pool_windows` for numpy arrays: each text's consecutive window vectors pooled element-wise."""
    import numpy

    if all(count == 1 for count in windows_per_text):
        return vectors
    groups = numpy.split(vectors, numpy.cumsum(windows_per_text)[:-1])
    reduce = numpy.mean if pooling == "mean" else numpy.max
    return numpy.stack([reduce(group, axis=0) for group in groups])


def usable(directory: Path) -> bool:
    """Whether `directory` holds a portable form this interpreter can run: its manifest is there, onnxruntime and
    tokenizers are installed, and no NVIDIA GPU is present (torch uses that)."""
    return (
        (directory / PORTABLE / MANIFEST).is_file()
        and all(find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))
        and not NVIDIA_DRIVER.exists()
    )


def load(directory: Path, metadata: ModelMetadata) -> PortableClassifier:
    """The portable form in `directory`; a part that cannot be read is one DamagedModel naming it."""
    import numpy
    import onnxruntime

    here = directory / PORTABLE

    def damaged(part: str | Path, exc: BaseException) -> DamagedModel:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return DamagedModel(f"{directory}: damaged model: {Path(part).as_posix()} cannot be loaded ({detail})")

    try:
        manifest = json.loads((here / MANIFEST).read_text(encoding="utf-8"))
        pad = int(manifest["pad_token_id"])
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {manifest.get('format_version')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged(f"{PORTABLE}/{MANIFEST}", exc) from None
    try:
        with numpy.load(here / HEAD) as head:
            weight, bias = head["weight"], head["bias"]
        if weight.shape[0] != len(metadata.labels) or bias.shape != (len(metadata.labels),):
            raise ValueError(f"a head of {weight.shape[0]} classes for {len(metadata.labels)} labels")
    except (OSError, ValueError, KeyError) as exc:
        raise damaged(f"{PORTABLE}/{HEAD}", exc) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its graph-optimisation notes are not the user's concern
    try:
        session = onnxruntime.InferenceSession(str(here / GRAPH), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail, InvalidGraph, NoSuchFile...
        raise damaged(f"{PORTABLE}/{GRAPH}", exc) from None
    try:
        tokenizer = FileTokenizer(directory / TOKENIZER_FILE)
    except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
        raise damaged(TOKENIZER_FILE, exc) from None
    return PortableClassifier(session, weight, bias, tokenizer, pad, metadata.labels, metadata.config, metadata.raw)


def export(model: BERTClassifier, tokenizer: Any, config: TrainingConfig, directory: Path) -> float:
    """Write the portable form of `model` (whose tokenizer is saved at `directory / TOKENIZER_FILE`) into
    `directory / PORTABLE` and return the largest difference from torch it showed; on any failure nothing of it
    is left and ExportFailed says why."""
    target = directory / PORTABLE
    shutil.rmtree(target, ignore_errors=True)
    try:
        return _export(model, tokenizer, config, directory, target)
    except ExportFailed:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except Exception as exc:  # the exporter and onnxruntime fail in many ways; each means "no portable form"
        shutil.rmtree(target, ignore_errors=True)
        raise ExportFailed(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc


def _export(model: BERTClassifier, tokenizer: Any, config: TrainingConfig, directory: Path, target: Path) -> float:
    import copy

    import numpy

    if not (directory / TOKENIZER_FILE).is_file():
        raise ExportFailed(f"the tokenizer has no {TOKENIZER_FILE.name} (not a fast tokenizer)")
    pad = tokenizer.pad_token_id or 0
    portable_tokenizer = FileTokenizer(directory / TOKENIZER_FILE)
    texts = [*PROBES, " ".join(PROBES * (config.max_tokens // 4 + 1))]
    ids = encode_texts(tokenizer, texts, config.windowing)
    if encode_texts(portable_tokenizer, texts, config.windowing) != ids:
        raise ExportFailed(f"{TOKENIZER_FILE} alone tokenizes the probe texts differently from transformers")
    traced = collate(ids, [1, 0], pad)  # two widths: the graph must not keep the traced shape
    checks = [collate(ids, [3, 2, 0, 1], pad), collate(ids, [0], pad), collate(ids, [3], pad)]

    from plexus_train.container.model import WindowVectors

    encoder = WindowVectors(model if model.head.weight.device.type == "cpu" else copy.deepcopy(model).cpu())
    was_training = encoder.classifier.training
    encoder.eval()  # the wrapper too: the exporter puts back the mode it found, and the check needs eval's
    try:
        difference = _write_graph(encoder, traced, checks, target)
    finally:
        encoder.classifier.train(was_training)
    head = model.head
    numpy.savez(target / HEAD, weight=head.weight.detach().cpu().numpy(), bias=head.bias.detach().cpu().numpy())
    manifest = {"format_version": FORMAT_VERSION, "pad_token_id": pad, "opset": OPSET, "largest_difference": difference}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return difference


def _write_graph(encoder: Any, traced: WindowBatch, checks: list[WindowBatch], target: Path) -> float:
    """Trace `encoder` (a `model.WindowVectors`) on `traced` into `target / GRAPH`, then run the graph on `checks`
    with onnxruntime: the largest difference from torch's vectors, refused past TOLERANCE."""
    import numpy
    import onnxruntime
    import torch

    target.mkdir(parents=True)
    axes = {"input_ids": {0: "windows", 1: "tokens"}, "attention_mask": {0: "windows", 1: "tokens"}}
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns that it is deprecated and that tracing may miss branches: the check below is the answer.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            tuple(torch.from_numpy(array) for array in (traced.input_ids, traced.attention_mask)),
            str(target / GRAPH),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["vectors"],
            dynamic_axes={**axes, "vectors": {0: "windows"}},
            opset_version=OPSET,
        )
    session = onnxruntime.InferenceSession(str(target / GRAPH), providers=["CPUExecutionProvider"])
    difference = 0.0
    for batch in checks:
        with torch.no_grad():
            expected = encoder(*(torch.from_numpy(array) for array in (batch.input_ids, batch.attention_mask)))
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        difference = max(difference, float(numpy.abs(session.run(["vectors"], feeds)[0] - expected.numpy()).max()))
    if not difference <= TOLERANCE:
        raise ExportFailed(f"the ONNX graph's window vectors differ from torch's by {difference:.2g}")
    return difference
