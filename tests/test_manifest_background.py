"""Validation in a forked child, overlapping client setup: the same verdict as validating in place, and
never an AWS call before the manifest is known to be valid."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plexus_infra.core.errors import ManifestError
from plexus_infra.manifest import background
from plexus_infra.manifest.validate import load_environment
from tests.helpers import ROOT, run_cli

BAD = "version: 1\nenvironment: dev\nregion: mars-1\nbucket:\n  versioning: sometimes\n"


def in_fresh_process(script: str) -> str:
    """Run `script` in a new interpreter (single-threaded, so the fork path is taken) and return stdout."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_forked_validation_returns_the_same_environment() -> None:
    out = in_fresh_process(
        "from plexus_infra.manifest.background import validate_in_background as v\n"
        "from plexus_infra.manifest.validate import load_environment as here\n"
        "p = v('environments/staging.yaml')\n"
        "print(p.forked, p.region, p.environment() == here('environments/staging.yaml'))"
    )
    assert out == "True us-east-1 True"


def test_a_forked_validation_reports_every_problem_as_in_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    out = in_fresh_process(
        "from plexus_infra.core.errors import ManifestError\n"
        "from plexus_infra.manifest.background import validate_in_background as v\n"
        f"p = v({str(bad)!r})\n"
        "try:\n    p.environment()\nexcept ManifestError as e:\n    print(p.forked); print(e)"
    )
    with pytest.raises(ManifestError) as in_place:
        load_environment(bad)
    assert out == f"True\n{in_place.value}"


def test_a_child_that_says_nothing_leaves_the_verdict_to_this_process() -> None:
    out = in_fresh_process(
        "from plexus_infra.manifest import background as b\n"
        "b._answer_from_child = lambda path, pipe: None  # the child exits without an answer\n"
        "p = b.validate_in_background('environments/development.yaml')\n"
        "print(p.forked, p.environment().name)"
    )
    assert out == "True development"


def test_with_other_threads_alive_it_validates_in_place() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        pending = background.validate_in_background(ROOT / "environments" / "production.yaml")
    finally:
        stop.set()
        worker.join()
    assert not pending.forked
    assert pending.environment().name == "production"


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("version: 1\nregion: eu-west-1\n", "eu-west-1"),
        ("version: 1\n", "us-east-1"),
        ("region: 'ap-south-1'", "ap-south-1"),
    ],
)
def test_region_hint_reads_the_top_level_region(tmp_path: Path, text: str, region: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert background.region_hint(path) == region


def test_plan_on_a_bad_manifest_prints_its_problems_and_calls_no_aws(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    validated = run_cli("validate", str(bad))
    planned = run_cli("plan", str(bad), "--stats", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert planned.returncode == validated.returncode == 1
    assert planned.stderr == validated.stderr
    assert "region" in planned.stderr and "bucket.versioning" in planned.stderr
    assert "AWS API calls" not in planned.stderr and "Traceback" not in planned.stderr
