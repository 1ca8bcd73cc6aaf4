"""Property-based tests: generated manifests that respect every AWS rule validate and reach the model intact;
mutated ones are rejected with located, one-line problems; arbitrary text and bytes never raise anything but
ManifestError. Seeded and bounded (`derandomize=True`) so the file runs in well under a minute.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexus_infra.core.errors import ManifestError
from plexus_infra.manifest.model import Environment
from plexus_infra.manifest.validate import load_environment
from tests.mutations import Path_, deeply_nested, nodes, other_type, replaced

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- AWS facts, restated here rather than imported, so a wrong rule in validate.py cannot agree with itself --

CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
INFREQUENT_ACCESS = {"STANDARD_IA", "ONEZONE_IA"}
RESERVED_RULE_IDS = {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions"}
REGIONS = ("us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "il-central-1")
TAG_PUNCTUATION = "_.:/=+-@"
# Text YAML can carry exactly: NEL and the Unicode line/paragraph separators are line breaks in YAML 1.1.
yaml_text = st.characters(exclude_categories=["Cs", "Zl", "Zp"], exclude_characters="\x85")
LATIN1_PRINTABLE = "\t\n\r" + "".join(map(chr, range(0x20, 0x7F))) + "".join(map(chr, range(0xA1, 0x100)))

# --- valid manifests --------------------------------------------------------------------------------------

environment_names = st.from_regex(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", fullmatch=True)
tag_text = st.text(st.characters(categories=["L", "N", "Zs"]) | st.sampled_from(TAG_PUNCTUATION), max_size=256)
tag_keys = st.text(
    st.characters(categories=["L", "N", "Zs"]) | st.sampled_from(TAG_PUNCTUATION), min_size=1, max_size=128
).filter(lambda key: not key.lower().startswith(("aws:", "plexus:")))
bucket_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
bucket_names = (
    st.lists(bucket_labels, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda name: 3 <= len(name) <= 63)
    .filter(lambda name: any(c.isalpha() for c in name))  # never IP-like
    .filter(lambda name: not name.startswith(("xn--", "sthree-", "amzn-s3-demo-")))
    .filter(lambda name: not name.endswith(("-s3alias", "--ol-s3", "--x-s3", ".mrap")))
)
parameter_prefixes = st.builds(
    lambda parts, slash: "/" + "/".join(parts) + slash,
    st.lists(st.from_regex(r"[a-zA-Z0-9_.-]{1,20}", fullmatch=True), min_size=1, max_size=5),
    st.sampled_from(["", "/"]),
).filter(lambda prefix: not prefix.lower().startswith(("/aws", "/ssm")))
rule_ids = st.text(yaml_text, min_size=1, max_size=255).filter(lambda rule_id: rule_id not in RESERVED_RULE_IDS)


@st.composite
def transitions(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Colder classes at later days, IA classes from day 30 and for at least 30 days, no ONEZONE_IA→GLACIER_IR."""
    chosen = draw(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=4, unique=True))
    chosen = sorted(chosen, key=CLASSES.index)
    result: list[dict[str, Any]] = []
    for storage_class in chosen:
        if result and (result[-1]["storage_class"], storage_class) == ("ONEZONE_IA", "GLACIER_IR"):
            continue
        earliest = 30 if storage_class in INFREQUENT_ACCESS else 0
        if result:
            stay = 30 if result[-1]["storage_class"] in INFREQUENT_ACCESS else 1
            earliest = max(earliest, result[-1]["days"] + stay)
        result.append({"days": earliest + draw(st.integers(0, 400)), "storage_class": storage_class})
    return result


@st.composite
def lifecycle_rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": draw(rule_ids), "prefix": draw(st.text(yaml_text, max_size=100))}
    steps = draw(st.none() | transitions())
    if steps:
        rule["transitions"] = steps
    if not steps or draw(st.booleans()):
        after = steps[-1]["days"] if steps else 0
        rule["expiration_days"] = draw(st.integers(after + 1, 36500))
    return rule


encryption = st.one_of(
    st.fixed_dictionaries({}, optional={"algorithm": st.just("SSE-S3"), "bucket_key": st.booleans()}),
    st.fixed_dictionaries(
        {"algorithm": st.just("SSE-KMS")},
        optional={
            "kms_key_id": st.from_regex(
                r"alias/[a-z0-9/_-]{1,30}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{12}", fullmatch=True
            ),
            "bucket_key": st.booleans(),
        },
    ),
)
buckets = st.fixed_dictionaries(
    {},
    optional={
        "name": bucket_names,
        "versioning": st.booleans(),
        "encryption": encryption,
        "block_public_access": st.booleans(),
        "object_ownership": st.sampled_from(["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"]),
        "enforce_tls": st.booleans(),
        "lifecycle": st.fixed_dictionaries(
            {},
            optional={
                "abort_incomplete_multipart_upload_days": st.integers(1, 36500),
                "noncurrent_version_expiration_days": st.integers(1, 36500),
                "rules": st.lists(lifecycle_rules(), max_size=5, unique_by=lambda rule: rule["id"]),
            },
        ),
    },
)
roles = st.fixed_dictionaries(
    {},
    optional={
        "name": st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,64}", fullmatch=True),
        "description": st.text(st.sampled_from(LATIN1_PRINTABLE), max_size=1000),
        "max_session_duration": st.integers(3600, 43200),
        "managed_policy_arns": st.lists(
            st.from_regex(r"arn:aws:iam::(aws|[0-9]{12}):policy/[A-Za-z0-9+=,.@_-]{1,40}", fullmatch=True),
            unique=True,
            max_size=3,
        ),
        "ecr_repository_arns": st.lists(st.text(yaml_text, min_size=1, max_size=100), max_size=3),
    },
)
manifests = st.fixed_dictionaries(
    {"version": st.just(1), "environment": environment_names},
    optional={
        "region": st.sampled_from(REGIONS),
        "account_id": st.from_regex(r"[0-9]{12}", fullmatch=True),
        "removal_policy": st.sampled_from(["destroy", "retain"]),
        "tags": st.dictionaries(tag_keys, tag_text, max_size=8),
        "bucket": buckets,
        "role": roles,
        "outputs": st.fixed_dictionaries({}, optional={"parameter_prefix": parameter_prefixes}),
    },
)


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest_file() -> Iterator[Path]:
    """One file path reused by every example (hypothesis forbids function-scoped fixtures in @given)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "manifest.yaml"


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000), encoding="utf-8")
    return path


def outcome(path: Path) -> Environment | ManifestError:
    """What validating `path` gives: anything but an Environment or a ManifestError propagates and fails."""
    try:
        return load_environment(path)
    except ManifestError as error:
        return error


def assert_well_formed(error: ManifestError, path: Path, *, located: bool) -> None:
    """Every problem names the file, fits on one printable line, and (when the data came from it) a line."""
    assert error.problems
    for problem in error.problems:
        assert problem.file == str(path)
        assert len(str(problem).splitlines()) == 1
        str(problem).encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogates
        if located:
            assert problem.line is not None and problem.column is not None, str(problem)


def rejected(path: Path) -> ManifestError:
    result = outcome(path)
    assert isinstance(result, ManifestError), "a broken manifest validated"
    assert_well_formed(result, path, located=True)
    return result


def assert_model_matches(environment: Environment, data: dict[str, Any]) -> None:
    name = data["environment"]
    bucket, role = data.get("bucket", {}), data.get("role", {})
    lifecycle, encryption = bucket.get("lifecycle", {}), bucket.get("encryption", {})
    assert environment.name == name
    assert environment.region == data.get("region", "us-east-1")
    assert environment.account_id == data.get("account_id")
    assert environment.removal_policy == data.get("removal_policy", "retain")
    assert dict(environment.tags) == data.get("tags", {})
    assert environment.bucket.name == bucket.get("name", f"plexus-{name}-training")
    assert environment.bucket.versioning == bucket.get("versioning", True)
    assert environment.bucket.encryption.algorithm == encryption.get("algorithm", "SSE-S3")
    assert environment.bucket.encryption.kms_key_id == encryption.get("kms_key_id")
    assert environment.bucket.object_ownership == bucket.get("object_ownership", "BucketOwnerEnforced")
    rules = [
        {
            "id": rule.id,
            "prefix": rule.prefix,
            **({"transitions": [vars(t) for t in rule.transitions]} if rule.transitions else {}),
            **({"expiration_days": rule.expiration_days} if rule.expiration_days is not None else {}),
        }
        for rule in environment.bucket.lifecycle.rules
    ]
    assert rules == lifecycle.get("rules", [])
    assert environment.bucket.lifecycle.noncurrent_version_expiration_days == lifecycle.get(
        "noncurrent_version_expiration_days", 30
    )
    assert environment.role.name == role.get("name", f"plexus-{name}-sagemaker-training")
    assert environment.role.max_session_duration == role.get("max_session_duration", 3600)
    assert environment.role.managed_policy_arns == tuple(role.get("managed_policy_arns", ()))
    if "description" in role:
        assert environment.role.description == role["description"]
    prefix = data.get("outputs", {}).get("parameter_prefix", f"/plexus/{name}")
    assert environment.outputs[0].parameter_name == prefix.rstrip("/") + "/training-bucket-name"


@SETTINGS
@given(data=manifests)
def test_generated_valid_manifest_validates_and_reaches_the_model(data: dict[str, Any], manifest_file: Path) -> None:
    result = outcome(write_yaml(manifest_file, data))
    assert isinstance(result, Environment), str(result)
    assert_model_matches(result, data)


# --- mutations that must be rejected ----------------------------------------------------------------------

FREE_FORM_MAPPINGS = {("tags",)}  # any key is allowed there (its keys are checked by other rules)


def _wrong_type(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    path, value = draw(st.sampled_from([node for node in nodes(data) if node[0]]))
    return replaced(data, path, draw(other_type(value)))


def _unknown_key(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    mappings = [p for p, v in nodes(data) if isinstance(v, dict) and p not in FREE_FORM_MAPPINGS]
    path = draw(st.sampled_from(mappings))
    known = {"version", "environment", "region", "account_id", "removal_policy", "tags", "bucket", "role", "outputs"}
    known |= {key for _, value in nodes(data) if isinstance(value, dict) for key in value}
    key = draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in known and k != "<<"))
    return replaced(data, (*path, key), draw(st.integers() | st.text(max_size=10)))


def _days_out_of_range(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    integers = [p for p, v in nodes(data) if isinstance(v, int) and not isinstance(v, bool) and p]
    path = draw(st.sampled_from(integers))
    return replaced(data, path, draw(st.integers(max_value=-1) | st.integers(min_value=100_000, max_value=10**40)))


BROKEN_NAMES: dict[Path_, st.SearchStrategy[str]] = {
    ("bucket", "name"): st.sampled_from(["ab", "Plexus-Data", "plexus..data", "10.0.0.1", "xn--abc", "a-s3alias"])
    | st.text(st.sampled_from("abc"), min_size=64, max_size=80),
    ("role", "name"): st.sampled_from(["", "with space", "rôle", "a/b"]) | st.text(st.just("r"), min_size=65),
    ("environment",): st.sampled_from(["Dev", "dev_env", "-dev", "dev-", "d", "ünïcode"]),
    ("region",): st.sampled_from(["us-east", "US-EAST-1", "moon-1", "us-east-1\n", "eu_west_1"]),
    ("account_id",): st.sampled_from(["12345678901", "1234567890123", "12345678901a", "١٢٣٤٥٦٧٨٩٠١٢"]),
    ("outputs", "parameter_prefix"): st.sampled_from(["plexus/dev", "/aws/x", "/a//b", "/a b", "/ssm"]),
}


def _broken_name(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(BROKEN_NAMES)))
    data = {**data, **({path[0]: dict(data.get(path[0], {}))} if len(path) == 2 else {})}
    return replaced(data, path, draw(BROKEN_NAMES[path]))


def _deep_nesting(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    path = draw(st.sampled_from([p for p, _ in nodes(data) if p]))
    return replaced(data, path, deeply_nested(draw(st.integers(70, 400))))


def _huge_value(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    strings = [p for p, v in nodes(data) if isinstance(v, str)]
    path = draw(st.sampled_from(strings))
    return replaced(data, path, draw(st.sampled_from("xé🚀")) * draw(st.integers(3_000, 200_000)))


MUST_FAIL: dict[str, Callable[[st.DrawFn, dict[str, Any]], dict[str, Any]]] = {
    "wrong-type": _wrong_type,
    "unknown-key": _unknown_key,
    "days-out-of-range": _days_out_of_range,
    "broken-name": _broken_name,
    "deep-nesting": _deep_nesting,
    "huge-value": _huge_value,
}


@st.composite
def broken_manifests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(MUST_FAIL)))
    return kind, MUST_FAIL[kind](draw, draw(manifests))


@settings(SETTINGS, max_examples=400)
@given(case=broken_manifests())
def test_mutated_manifest_is_rejected_with_located_problems(
    case: tuple[str, dict[str, Any]], manifest_file: Path
) -> None:
    _kind, data = case
    rejected(write_yaml(manifest_file, data))


@st.composite
def unicode_everywhere(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(manifests)
    strings = [p for p, v in nodes(data) if isinstance(v, str)]
    for path in draw(st.lists(st.sampled_from(strings), min_size=1, max_size=3)):
        data = replaced(data, path, draw(st.text(max_size=50)))
    return data


@SETTINGS
@given(data=unicode_everywhere())
def test_random_unicode_in_any_field_validates_or_is_rejected_cleanly(
    data: dict[str, Any], manifest_file: Path
) -> None:
    result = outcome(write_yaml(manifest_file, data))
    if isinstance(result, ManifestError):
        assert_well_formed(result, manifest_file, located=True)


# --- raw text and bytes -----------------------------------------------------------------------------------

YAML_TOKENS = [*":-[]{}&*!|>'\"%@`#,?<~=\n\t \\", "ab", "1", "yes", "<<", "\ufeff", "version: 1\n", "- "]
YAML_ISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=200).map("".join)


@st.composite
def damaged_manifests(draw: st.DrawFn) -> bytes:
    """A valid manifest's bytes with a few bytes inserted, deleted or overwritten."""
    raw = bytearray(yaml.safe_dump(draw(manifests), allow_unicode=True).encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b":", b"-", b"  ", b"\n", b"&a", b"*a"]))
        raw[at : at + (0 if action == "insert" else len(chunk))] = b"" if action == "delete" else chunk
    return bytes(raw)


@settings(SETTINGS, max_examples=200)
@given(raw=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode) | YAML_ISH.map(str.encode))
def test_arbitrary_bytes_give_an_environment_or_a_manifest_error(raw: bytes, manifest_file: Path) -> None:
    manifest_file.write_bytes(raw)
    result = outcome(manifest_file)
    if isinstance(result, ManifestError):
        assert_well_formed(result, manifest_file, located=False)


@settings(SETTINGS, max_examples=300)
@given(raw=damaged_manifests())
def test_damaged_manifest_gives_an_environment_or_a_manifest_error(raw: bytes, manifest_file: Path) -> None:
    manifest_file.write_bytes(raw)
    result = outcome(manifest_file)
    if isinstance(result, ManifestError):
        assert_well_formed(result, manifest_file, located=False)
