"""SageMaker names: valid, at most 63 characters, and distinct for distinct scores."""

from __future__ import annotations

import pytest

from plexus_train.names import VALID, name_stem, sagemaker_name

TIMESTAMP = "20250101-120000"  # a job's suffix: the longest one used


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("a-b/c", "a/b-c"),
        ("a_b/c", "a-b/c"),
        ("a/b_c", "a/b-c"),
        ("demo/ticket_topic", "demo/ticket-topic"),
        ("café/ticket", "cafe/ticket"),
        ("日本/語", "中国/語"),
        ("x" * 80 + "/a", "x" * 80 + "/b"),
    ],
)
def test_paths_that_clean_to_the_same_text_get_different_names(one: str, other: str) -> None:
    for suffix in ("", "m0123456789", TIMESTAMP):
        assert sagemaker_name(one, suffix) != sagemaker_name(other, suffix)


@pytest.mark.parametrize(
    "path",
    ["a-b/c", "a_b/c", "café/ticket", "日本/語", "-/-", "x" * 300 + "/y", "a" * 46 + "/b", "scorecard/ünïcödé-ßcore"],
)
def test_every_name_is_valid_for_sagemaker_and_at_most_63_characters(path: str) -> None:
    for suffix in ("", "c0123456789", TIMESTAMP):
        name = sagemaker_name(path, suffix)
        assert VALID.fullmatch(name), name
        assert len(name) <= 63
        assert name.startswith(name_stem(path))


def test_a_clean_path_keeps_its_readable_name_and_the_slash_becomes_two_hyphens() -> None:
    assert sagemaker_name("demo-support/ticket-topic") == "demo-support--ticket-topic"
    assert sagemaker_name("demo-support/ticket-topic", "m0123456789") == "demo-support--ticket-topic-m0123456789"
    assert sagemaker_name("a_b/c").startswith("a-b--c-") and len(sagemaker_name("a_b/c")) == len("a-b--c-") + 6
