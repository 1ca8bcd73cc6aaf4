"""Bad manifests as data files, pyinfra style: each `tests/manifests/bad/<case>.yaml` opens with a comment
saying what it proves and one `# expect: line:column: field: message` line per problem the validator must
report, in order and nothing more. Each file becomes a named library test and a named CLI test (one
`plexus-infra validate` subprocess checks them all at once); `tests/manifests/good/` must validate.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plexus_infra.core.errors import ManifestError
from plexus_infra.manifest.validate import load_environment
from tests.helpers import ROOT, run_cli

BAD = Path("tests/manifests/bad")
GOOD = Path("tests/manifests/good")
ENVIRONMENTS = sorted(Path("environments").glob("*.yaml"))
EXPECT = re.compile(rb"^# expect: (.*)$", re.MULTILINE)
LOCATED = re.compile(r"\d+:\d+: ")


@dataclass(frozen=True)
class Case:
    """One bad manifest and the exact problem lines it must produce."""

    path: Path  # relative to the repository root, as a user would type it
    expected: tuple[str, ...]  # "line:column: field: message", the file name left off

    @property
    def name(self) -> str:
        return self.path.stem

    def problem_lines(self) -> list[str]:
        """The expected lines with the file name: `file:line:column: …`, or `file: …` for a file-wide problem."""
        return [f"{self.path}{':' if LOCATED.match(e) else ': '}{e}" for e in self.expected]


def load_cases(folder: Path) -> list[Case]:
    """Every case file in `folder`; a file without an expectation is a broken case, not a pass."""
    cases = []
    for path in sorted((ROOT / folder).glob("*.yaml")):
        expected = tuple(m.decode("utf-8") for m in EXPECT.findall(path.read_bytes()))
        if not expected:
            raise AssertionError(f"{path} has no '# expect:' line")
        cases.append(Case(folder / path.name, expected))
    return cases


CASES = load_cases(BAD)


def problems_of(path: Path | str) -> list[str]:
    with pytest.raises(ManifestError) as failure:
        load_environment(path)
    return [str(problem) for problem in failure.value.problems]


@pytest.fixture(autouse=True)
def _run_from_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in messages are relative to the repository root, as a user running from there sees them."""
    monkeypatch.chdir(ROOT)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_manifest_reports_each_problem_at_its_line_and_field(case: Case) -> None:
    with pytest.raises(ManifestError) as failure:
        load_environment(case.path)
    problems = failure.value.problems
    assert [str(problem) for problem in problems] == case.problem_lines()
    assert all(problem.file == str(case.path) for problem in problems)
    assert [problem.line is not None for problem in problems] == [bool(LOCATED.match(e)) for e in case.expected]
    assert all(len(str(problem).splitlines()) == 1 for problem in problems)


# --- the real CLI, one subprocess for the whole corpus ------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_run() -> subprocess.CompletedProcess[str]:
    return run_cli("validate", *(str(case.path) for case in CASES))


def error_lines(output: str) -> list[str]:
    return [line.removeprefix("error: ") for line in output.splitlines() if line.startswith("error: ")]


def test_cli_rejects_the_corpus_with_exit_1_and_no_traceback(corpus_run: subprocess.CompletedProcess[str]) -> None:
    assert corpus_run.returncode == 1
    assert "Traceback" not in corpus_run.stdout + corpus_run.stderr
    assert corpus_run.stdout == ""  # not one file passed
    assert error_lines(corpus_run.stderr) == [line for case in CASES for line in case.problem_lines()]
    assert corpus_run.stderr.count("\n") == sum(len(case.expected) for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_cli_prints_each_problem_as_one_located_line(case: Case, corpus_run: subprocess.CompletedProcess[str]) -> None:
    printed = [line for line in error_lines(corpus_run.stderr) if line.startswith(f"{case.path}:")]
    assert printed == case.problem_lines()


@pytest.mark.parametrize(
    "name", ["lifecycle-standard-ia-before-30-days", "yaml-unclosed-bracket", "not-utf8", "alias-bomb"]
)
def test_cli_exits_1_for_a_single_bad_manifest(name: str) -> None:
    result = run_cli("validate", str(BAD / f"{name}.yaml"))
    assert (result.returncode, result.stdout) == (1, "")
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {BAD / name}.yaml:")


def test_cli_reports_a_file_with_three_problems_as_three_lines() -> None:
    result = run_cli("validate", str(BAD / "three-problems.yaml"))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 3


# --- inputs that cannot live in the corpus: generated here ------------------------------------------------


@pytest.fixture
def odd_paths(tmp_path: Path) -> dict[str, Path]:
    """A directory, a missing path, an empty file and a file over the 1 MiB limit."""
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.yaml"
    huge.write_text("version: 1\nenvironment: dev\n" + "# padding\n" * 110_000)  # 1,100,028 bytes
    return {"directory": tmp_path, "missing": tmp_path / "missing.yaml", "empty": empty, "huge": huge}


ODD_MESSAGES = {
    "directory": "is a directory, not a manifest",
    "missing": "no such manifest",
    "empty": "file is empty",
    "huge": "manifest is 1,100,028 bytes; the limit is 1,048,576",
}


@pytest.mark.parametrize("kind", sorted(ODD_MESSAGES))
def test_unreadable_input_is_one_clear_problem(kind: str, odd_paths: dict[str, Path]) -> None:
    assert problems_of(odd_paths[kind]) == [f"{odd_paths[kind]}: {ODD_MESSAGES[kind]}"]


def test_cli_reports_unreadable_inputs_one_line_each(odd_paths: dict[str, Path]) -> None:
    kinds = sorted(ODD_MESSAGES)
    result = run_cli("validate", *(str(odd_paths[kind]) for kind in kinds))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [f"{odd_paths[kind]}: {ODD_MESSAGES[kind]}" for kind in kinds]


def test_more_than_1000_lifecycle_rules_is_an_error(tmp_path: Path) -> None:
    manifest = tmp_path / "rules.yaml"
    rules = "".join(f"      - {{id: r{i}, prefix: p{i}/, expiration_days: 7}}\n" for i in range(999))
    manifest.write_text("version: 1\nenvironment: dev\nbucket:\n  lifecycle:\n    rules:\n" + rules)
    message = "bucket.lifecycle.rules: S3 allows at most 1000 lifecycle rules (2 are the housekeeping rules)"
    assert problems_of(manifest) == [f"{manifest}:6:7: {message}"]


def test_a_file_that_is_both_duplicated_and_invalid_reports_both(tmp_path: Path) -> None:
    manifest = tmp_path / "both.yaml"
    manifest.write_text("version: 1\nenvironment: dev\nregion: moon\nregion: mars\ncolour: red\n")
    assert [line.split(": ", 1)[0] for line in problems_of(manifest)] == [
        f"{manifest}:3:9",
        f"{manifest}:4:1",
        f"{manifest}:5:1",
    ]


# --- good manifests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENVIRONMENTS + sorted(GOOD.glob("*.yaml")), ids=lambda path: path.stem)
def test_good_manifest_validates(path: Path) -> None:
    environment = load_environment(path)
    assert environment.source == str(path)
    assert environment.bucket.name and environment.role.name


def test_shipped_environments_validate_with_exit_0_and_no_aws() -> None:
    result = run_cli("validate", *map(str, ENVIRONMENTS), env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert (result.returncode, result.stderr) == (0, "")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [f"✓ {path}" for path in ENVIRONMENTS]


def test_validation_never_imports_an_aws_sdk() -> None:
    """No AWS call is possible if boto3 and botocore are never imported; checked in a fresh interpreter."""
    code = (
        "import sys\n"
        "from plexus_infra.cli import main\n"
        f"code = main(['validate', *{[str(p) for p in ENVIRONMENTS]!r}, {str(BAD / 'three-problems.yaml')!r}])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.splitlines()[-1] == "1 []"


def test_merge_keys_merge_and_explicit_fields_win() -> None:
    rules = load_environment(GOOD / "merge-keys.yaml").bucket.lifecycle.rules
    assert [(rule.id, rule.prefix, rule.expiration_days) for rule in rules] == [
        ("expire-data", "data/", 7),
        ("expire-models", "models/", 30),
    ]


def test_every_field_reaches_the_model() -> None:
    environment = load_environment(GOOD / "everything.yaml")
    assert (environment.name, environment.region, environment.account_id) == (
        "research-2",
        "eu-west-1",
        "123456789012",
    )
    assert environment.bucket.encryption.algorithm == "SSE-KMS" and environment.bucket.encryption.bucket_key
    assert [t.storage_class for t in environment.bucket.lifecycle.rules[0].transitions] == [
        "STANDARD_IA",
        "INTELLIGENT_TIERING",
        "ONEZONE_IA",
        "GLACIER",
        "DEEP_ARCHIVE",
    ]
    assert environment.role.max_session_duration == 43200
    assert environment.parameter_prefix == "/plexus/research-2"
    assert dict(environment.tags)["cost-center"] == "4711"
