"""A tiny, randomly initialised BERT with a vocabulary drawn from your data: an offline stand-in for a
pretrained encoder, for demos and tests that must train in seconds on a CPU.

    python -m plexus_train.tinymodel build/tiny-bert --vocab-from datasources/support_tickets.csv
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def vocabulary(texts: Iterable[str]) -> list[str]:
    """Special tokens, then every distinct lowercase word and punctuation mark, sorted."""
    words = {token for text in texts for token in WORD.findall(text.lower())}
    return [*SPECIAL_TOKENS, *sorted(words - set(SPECIAL_TOKENS))]


def build_tiny_bert(directory: Path, words: Sequence[str], *, hidden_size: int = 64, layers: int = 2) -> Path:
    """Save a BertModel and BertTokenizer to `directory`, loadable with AutoModel/AutoTokenizer offline."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*SPECIAL_TOKENS, *words]))}
    # transformers 5 ignores vocab_file= here; vocab= is the argument that takes effect.
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden_size * 4,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
    return directory


def csv_texts(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plexus_train.tinymodel", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where to save the model and tokenizer")
    parser.add_argument("--vocab-from", type=Path, required=True, metavar="CSV", help="CSV whose texts give the words")
    parser.add_argument("--text-column", default="text", help="the CSV's text column (default: text)")
    args = parser.parse_args(argv)
    words = vocabulary(csv_texts(args.vocab_from, args.text_column))
    build_tiny_bert(args.directory, words)
    print(f"tiny BERT with {len(words)} tokens saved to {args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
