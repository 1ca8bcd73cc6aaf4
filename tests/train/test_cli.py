"""The `plexus` command line: fast help, thin shell."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT
from tests.train.helpers import BUCKET, plexus_cli, publish_outputs

HEAVY = ("torch", "transformers", "sagemaker", "boto3")


def test_importing_the_cli_and_help_load_nothing_heavy() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "import plexus_train.cli as cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['train', '--help'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_lists_the_commands() -> None:
    result = plexus_cli("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("train", "provision", "predict"))


def test_unknown_scorecard_is_one_line_and_exit_one(tmp_path) -> None:
    (tmp_path / "scorecards").mkdir()
    result = plexus_cli("train", "--scorecard", "x", "--score", "y", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: no scorecard 'x' under scorecards/; found: none\n"


def test_yaml_is_accepted_and_its_help_says_it_is_the_only_source() -> None:
    from plexus_train.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--scorecard", "a", "--score", "b", "--yaml"]).yaml is True
    assert parser.parse_args(["train", "--scorecard", "a", "--score", "b"]).yaml is False
    help_text = " ".join(plexus_cli("train", "--help").stdout.split())
    assert "--yaml accepted for compatibility: scorecards always come from scorecards/*.yaml (the only source)" in (
        help_text
    )


def test_status_without_an_endpoint_is_one_error_line_and_exit_one(sandbox, project) -> None:
    publish_outputs()
    argv = ("provision", "status", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--env", "test")
    result = plexus_cli(*argv, cwd=project)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: no endpoint test-scorecard-v-1-0--ticket-topic; create it with plexus provision endpoint\n"
    )


def test_a_sagemaker_run_on_s3_data_makes_one_set_of_clients(sandbox, project, monkeypatch, plexus) -> None:
    import boto3

    from plexus_infra.core import aws

    publish_outputs()
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="in/tickets.csv", Body=(project / "datasources" / "tickets.csv").read_bytes()
    )
    made: list[str] = []
    real_init = aws.Clients.__init__

    def counting(self, region, *args, **kwargs):
        made.append(region)
        real_init(self, region, *args, **kwargs)

    monkeypatch.setattr(aws.Clients, "__init__", counting)
    argv = ["train", "--scorecard", "Test Scorecard v 1.0", "--score", "Ticket Topic", "--env", "test"]
    ran = plexus(*argv, "--platform", "sagemaker", "--data", f"s3://{BUCKET}/in/tickets.csv")
    assert "240 examples from s3://" in ran.out, ran.err  # the data was read from S3, then the job created
    assert made == ["us-east-1"]
