"""The CLI starts fast because nothing heavy is imported on the way to --help."""

import subprocess
import sys

from tests.helpers import ROOT, run_cli

HEAVY = ("boto3", "botocore", "rich", "jsonschema", "yaml", "torch", "transformers", "sagemaker", "moto")


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\nfrom plexus_infra.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "plan" in result.stdout and "apply" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_same_cli() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("plexus-infra ")


def test_every_command_has_help() -> None:
    for command in ("validate", "plan", "apply", "destroy", "outputs", "sandbox"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, result.stderr
        assert f"plexus-infra {command}" in result.stdout
