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


SYSTEM_TAG_PREFIX = "aws:"


def is_system_tag(key: str) -> bool:
    """Keys starting with `aws:` belong to AWS (CloudFormation writes `aws:cloudformation:stack-name`, `-id` and
    `logical-id` on what it creates): nobody may add, change or remove them, so they are never diffed, shown as
    changes or removed. https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html"""
    return key.startswith(SYSTEM_TAG_PREFIX)


def split_system_tags(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the tags a user manages, AWS's own `aws:` tags).

    Example: split_system_tags({"a": "1", "aws:cloudformation:stack-name": "s"}) == ({"a": "1"}, {...: "s"})
    """
    user = {key: value for key, value in tags.items() if not is_system_tag(key)}
    system = {key: value for key, value in tags.items() if is_system_tag(key)}
    return user, system
