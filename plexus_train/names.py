"""SageMaker resource names: `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, distinct for distinct scores.

Every name this tool makes is `{stem}` (the endpoint) or `{stem}-{suffix}` (models, configs, jobs), where the
stem comes from the score's `{scorecard_key}/{score_key}`: the `/` becomes `--` (keys never hold `--`: Plexus's
key rule collapses runs of separators and the schema forbids them), and the stem is kept only when that is
already a valid name. Whenever anything else had to change (`_`, non-ASCII letters, an empty result, too long),
a short hash of the original is appended, so `a-b/c`, `a/b-c`, `a_b/c` and `a-b/c` all get different names.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 63
SUFFIX_ROOM = 16  # "-" + the longest suffix used: a job's "%Y%m%d-%H%M%S" timestamp (15 characters)
STEM_LENGTH = MAX_LENGTH - SUFFIX_ROOM
NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9-]+")
VALID = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def name_stem(base: str) -> str:
    """The part every name for `base` starts with; at most STEM_LENGTH characters.

    Example: `name_stem("demo/ticket-topic") == "demo--ticket-topic"`
    """
    text = base.replace("/", "--")
    clean = NOT_ALLOWED.sub("-", text).strip("-")
    if clean and clean == text and len(clean) <= STEM_LENGTH:
        return clean
    digest = hashlib.sha256(base.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    kept = clean[: STEM_LENGTH - len(digest) - 1].rstrip("-")
    return f"{kept}-{digest}" if kept else digest


def sagemaker_name(base: str, suffix: str = "") -> str:
    """`name_stem(base)`, plus `-suffix` when given (letters, digits and hyphens, at most 15 characters).

    Example: `sagemaker_name("demo/ticket-topic", "a1b2") == "demo--ticket-topic-a1b2"`; for
    "demo/ticket_topic" a 6-hex hash of the original follows the stem: `demo--ticket-topic-{hash}-a1b2`.
    """
    stem = name_stem(base)
    return f"{stem}-{suffix}" if suffix else stem


def content_hash(*parts: object) -> str:
    """A short stable hash of `parts` (their reprs), for names that must change when content does."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]
