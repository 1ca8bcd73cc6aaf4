"""SageMaker resource names: letters, digits and hyphens, at most 63 characters, unique when shortened."""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 63
NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9]+")


def sagemaker_name(base: str, suffix: str = "") -> str:
    """`base` made valid (other characters → '-') plus `-suffix`; when too long, `base` is cut and a short
    hash of the full base keeps distinct inputs distinct.

    Example: `sagemaker_name("demo/ticket_topic", "a1b2") == "demo-ticket-topic-a1b2"`
    """
    clean = NOT_ALLOWED.sub("-", base).strip("-")
    tail = f"-{suffix}" if suffix else ""
    if len(clean) + len(tail) <= MAX_LENGTH:
        return clean + tail
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    return f"{clean[: MAX_LENGTH - len(tail) - 7].rstrip('-')}-{digest}{tail}"


def content_hash(*parts: object) -> str:
    """A short stable hash of `parts` (their reprs), for names that must change when content does."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]
