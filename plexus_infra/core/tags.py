"""AWS tags as both tools handle them: dicts, never AWS's lists, so order never matters."""

from __future__ import annotations


def tag_dict(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    """AWS's `[{"Key": k, "Value": v}]` as `{k: v}`: tags compare as dicts, order never matters."""
    return {tag["Key"]: tag["Value"] for tag in tag_list or ()}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """`{k: v}` as AWS's `[{"Key": k, "Value": v}]`, sorted by key so requests are deterministic."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tags_to_set(live: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The wanted tags that are missing or have another value live: all a tag-merging API needs to be sent.

    Example: tags_to_set({"a": "1", "b": "2"}, {"a": "1", "b": "3"}) == {"b": "3"}
    """
    return {key: value for key, value in wanted.items() if live.get(key) != value}
