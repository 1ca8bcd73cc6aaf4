"""`plexus-infra ci`: branch → environment, artifacts, the saved-plan apply, drift checks, and the shipped examples."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import boto3
import pytest
import yaml

from plexus_infra import ci, cli
from plexus_infra.ci import Mode, branch_name, choose_target, detect_branch
from plexus_infra.core.errors import PlexusError
from plexus_infra.sandbox import Sandbox
from tests.helpers import ROOT

EXAMPLES = (ROOT / ".github/workflows/infra.yml", ROOT / "buildspec.yml")
# What the examples' shell variables hold when the test runs their steps.
EXAMPLE_VARIABLES = {"GITHUB_BASE_REF": "main", "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main"}
SHELL_OPERATORS = {";", ";;", "&&", "||", "|", "&"}


@pytest.fixture(autouse=True)
def no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests may themselves run in CI: its branch variables must not leak into them."""
    for name in (*ci.BRANCH_VARIABLES, "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


# --- choosing the branch and the environment (pure) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "branch"),
    [
        ("main", "main"),
        ("refs/heads/staging", "staging"),
        ("feature/x", "feature/x"),
        ("3f9c2a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f", None),  # CODEBUILD_SOURCE_VERSION as a commit id
        ("pr/42", None),
        ("HEAD", None),
        ("", None),
    ],
)
def test_branch_name_reads_ci_variables(value: str, branch: str | None) -> None:
    assert branch_name(value) == branch


def test_branch_comes_from_the_flag_then_ci_variables_in_order_then_git() -> None:
    environ = {"CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/staging", "CI_COMMIT_BRANCH": "main"}
    assert detect_branch("feature/y", environ) == ("feature/y", "--branch")
    assert detect_branch(None, environ) == ("staging", "CODEBUILD_WEBHOOK_HEAD_REF")
    assert detect_branch(None, {"CODEBUILD_SOURCE_VERSION": "a" * 40, "CI_COMMIT_BRANCH": "main"}) == (
        "main",
        "CI_COMMIT_BRANCH",
    )
    assert detect_branch(None, {}, git=lambda: "staging") == ("staging", "git")
    assert detect_branch(None, {}, git=lambda: None) == (None, "unknown")


def test_deploy_branches_apply_to_their_environment_and_others_only_plan() -> None:
    mapping = ci.BRANCH_ENVIRONMENTS
    main = choose_target("main", "x", env=None, mode=Mode.APPLY, branch_map=mapping)
    assert (main.environment, main.mode) == ("production", Mode.APPLY)
    feature = choose_target("feature/x", "x", env=None, mode=Mode.APPLY, branch_map=mapping)
    assert (feature.environment, feature.mode) == ("development", Mode.PLAN_ONLY)
    assert "deploys nowhere" in feature.reason
    pull_request = choose_target("main", "x", env=None, mode=Mode.PLAN_ONLY, branch_map=mapping)
    assert (pull_request.environment, pull_request.mode) == ("production", Mode.PLAN_ONLY)
    assert choose_target(None, "unknown", env="staging", mode=Mode.APPLY, branch_map=mapping).mode is Mode.PLAN_ONLY
    with pytest.raises(PlexusError, match="branch main deploys to production; --env staging contradicts it"):
        choose_target("main", "x", env="staging", mode=Mode.APPLY, branch_map=mapping)


def test_a_branches_file_overrides_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "branches.yaml"
    assert ci.branch_map(path) == ci.BRANCH_ENVIRONMENTS
    path.write_text("release: production\n")
    assert ci.branch_map(path) == {"release": "production"}
    path.write_text("- main\n")
    with pytest.raises(PlexusError):
        ci.branch_map(path)


# --- the step end to end against the sandbox -------------------------------------------------------------


def published(environment: str) -> bool:
    name = f"/plexus/{environment}/training-bucket-name"
    return bool(boto3.client("ssm").get_parameters(Names=[name])["Parameters"])


def check_artifacts(directory: Path, environment: str) -> dict:
    saved = json.loads((directory / "plan.json").read_text())
    assert saved["format_version"].split(".")[0] == "1"
    assert saved["tool"] == "plexus-infra" and saved["environment"] == environment
    assert saved["observed"] and saved["manifest_digest"]
    text = (directory / "plan.txt").read_text().splitlines()
    assert text[0].startswith(f"Plan for {environment} ")
    assert text[-1] == "Plan: 10 to add, 0 to change, 0 to destroy."
    return saved


@pytest.mark.parametrize(
    ("variable", "value", "environment", "applies"),
    [
        ("GITHUB_REF_NAME", "main", "production", True),
        ("CODEBUILD_WEBHOOK_HEAD_REF", "refs/heads/staging", "staging", True),
        ("CI_COMMIT_BRANCH", "feature/faster-training", "development", False),
    ],
)
def test_ci_step_maps_the_branch_plans_to_artifacts_and_applies_deploy_branches(
    sandbox: Sandbox, workdir: Path, monkeypatch, capsys, variable: str, value: str, environment: str, applies: bool
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(["ci", "--artifacts", "out"]) == cli.EXIT_OK
    check_artifacts(workdir / "out", environment)
    out = capsys.readouterr().out
    assert published(environment) is applies
    assert ("Apply complete! 10 added" in out) is applies
    if applies:
        assert cli.main(["ci", "--artifacts", "again"]) == cli.EXIT_OK
        assert (
            (workdir / "again/plan.txt")
            .read_text()
            .rstrip()
            .endswith(f"Infrastructure matches {environment_path(environment)}.")
        )
    else:
        assert boto3.client("s3").list_buckets()["Buckets"] == []


def environment_path(environment: str) -> str:
    return f"environments/{environment}.yaml"


def test_plan_only_exits_2_for_changes_only_with_detailed_exitcode(sandbox: Sandbox, workdir: Path) -> None:
    assert cli.main(["ci", "--plan-only", "--branch", "staging"]) == cli.EXIT_OK
    assert cli.main(["ci", "--plan-only", "--branch", "staging", "--detailed-exitcode"]) == cli.EXIT_CHANGES
    assert not published("staging")
    assert Path("plan-artifacts/plan.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["ci", "--detailed-exitcode", "--branch", "feature/x"],
        ["ci", "--detailed-exitcode", "--branch", "staging"],
        ["ci", "--drift-check", "--detailed-exitcode", "--env", "staging"],
    ],
)
def test_detailed_exitcode_without_plan_only_is_a_usage_error_before_any_call(
    workdir: Path, capsys, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == cli.EXIT_ERROR
    assert "error: ci: --detailed-exitcode only applies with --plan-only" in capsys.readouterr().err
    assert not Path("plan-artifacts").exists()


def test_ci_doc_exit_code_table_names_constants_where_they_live() -> None:
    import importlib

    text = (ROOT / "docs/ci.md").read_text()
    table = text[text.index("## Exit codes") : text.index("## The lock")]
    module = importlib.import_module(re.search(r"\| constant \(`([\w.]+)`\)", table).group(1))
    rows = re.findall(r"^\| (\d+) +\| `(EXIT_\w+)`", table, re.MULTILINE)
    assert [code for code, _ in rows] == ["0", "1", "2", "130"]
    for code, name in rows:
        assert getattr(module, name) == int(code), name
    assert cli.EXIT_DRIFT == cli.EXIT_CHANGES == 2


def test_drift_check_exits_2_and_summarizes_the_drift_in_one_block(
    sandbox: Sandbox, workdir: Path, monkeypatch, capsys
) -> None:
    assert cli.main(["ci", "--branch", "staging"]) == cli.EXIT_OK
    assert cli.main(["ci", "--drift-check", "--env", "staging"]) == cli.EXIT_OK
    assert "No drift: staging matches environments/staging.yaml." in capsys.readouterr().out
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket="plexus-staging-training", VersioningConfiguration={"Status": "Suspended"})
    summary = workdir / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert cli.main(["ci", "--drift-check", "--env", "staging"]) == cli.EXIT_DRIFT

    out = capsys.readouterr().out
    block = out[out.index("Drift in staging") :].splitlines()
    assert block[0] == (
        "Drift in staging (account 123456789012, us-east-1): 1 of 11 resources differ from environments/staging.yaml"
    )
    assert block[1:4] == [
        "  ~ s3_bucket_versioning.plexus-staging-training  (differs from the manifest)",
        '      ~ status: "Suspended" → "Enabled"',
        "To converge: plexus-infra apply environments/staging.yaml",
    ]
    assert s3.get_bucket_versioning(Bucket="plexus-staging-training")["Status"] == "Suspended"
    assert "### plexus-infra ci: staging (drift-check)" in summary.read_text()


def test_ci_refuses_to_apply_when_the_world_moves_between_plan_and_apply(
    sandbox: Sandbox, workdir: Path, monkeypatch, capsys
) -> None:
    """The apply goes through the saved-plan path: a change after the plan was saved is caught."""
    real_save = ci.save_plan

    def save_then_someone_writes(plan, path, text):
        written = real_save(plan, path, text)
        boto3.client("s3").create_bucket(Bucket="plexus-staging-training")
        return written

    monkeypatch.setattr(ci, "save_plan", save_then_someone_writes)
    assert cli.main(["ci", "--branch", "staging"]) == cli.EXIT_ERROR
    assert "Saved plan plan-artifacts/plan.json is stale: live state changed for s3_bucket." in capsys.readouterr().err
    assert not published("staging")


# --- the shipped examples ---------------------------------------------------------------------------------


def example_commands(path: Path) -> list[list[str]]:
    """Every `plexus-infra ...` command in a GitHub workflow's `run:` steps or a buildspec's `commands:`,
    as argv after `plexus-infra`, with shell variables filled in from EXAMPLE_VARIABLES."""
    document = yaml.safe_load(path.read_text())
    scripts: list[str] = []
    for job in (document.get("jobs") or {}).values():
        scripts += [step["run"] for step in job.get("steps", ()) if "run" in step]
    for phase in (document.get("phases") or {}).values():
        scripts += phase.get("commands", ())
    commands = []
    for line in "\n".join(scripts).splitlines():
        if "plexus-infra " not in line:
            continue
        words = shlex.split(line.split("plexus-infra ", 1)[1])
        argv = []
        for word in words:
            if word in SHELL_OPERATORS:
                break
            argv.append(re.sub(r"\$\{?(\w+)\}?", lambda m: EXAMPLE_VARIABLES[m.group(1)], word))
        commands.append(argv)
    return commands


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_use_only_commands_the_tool_accepts(path: Path) -> None:
    commands = example_commands(path)
    assert any(argv[:1] == ["ci"] and "--plan-only" in argv for argv in commands)
    assert any(argv[:1] == ["ci"] and not {"--plan-only", "--drift-check"} & set(argv) for argv in commands)
    parser = cli.build_parser()
    for argv in commands:
        parser.parse_args(argv)  # exits (fails the test) on anything the tool does not accept


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_steps_run_against_the_sandbox(sandbox: Sandbox, workdir: Path, monkeypatch, path: Path) -> None:
    """Deploy steps run as a push to staging would; plan-only steps as a pull request into main; drift last."""
    monkeypatch.setenv("GITHUB_REF_NAME", "staging")

    def order(argv: list[str]) -> tuple[bool, ...]:
        return ("--plan-only" in argv, "--apply-plan" in argv, "--drift-check" in argv)

    for index, argv in enumerate(sorted(example_commands(path), key=order)):
        if "--apply-plan" in argv:  # the reviewed plan of production, saved by the plan job, in another workflow run
            continue
        drift_of = argv[argv.index("--env") + 1] if "--drift-check" in argv else None
        expected = cli.EXIT_DRIFT if drift_of and not published(drift_of) else cli.EXIT_OK
        assert cli.main([*argv, "--artifacts", f"artifacts-{index}"]) == expected, argv
        saved = "*/plan.json" if "--all" in argv else "plan.json"
        assert list((workdir / f"artifacts-{index}").glob(saved)), argv
        assert (workdir / f"artifacts-{index}/report.md").exists(), argv
    assert published("staging")
    assert not published("production")


# --- pull requests, approvals and data safety ------------------------------------------------------------------


def shorten_staging_tiering() -> None:
    """A manifest edit that moves staging's training data to Glacier at 60 days instead of 90: data-loss rule."""
    path = Path("environments/staging.yaml")
    path.write_text(
        path.read_text().replace("{days: 90, storage_class: GLACIER}", "{days: 60, storage_class: GLACIER}")
    )


def test_plan_only_all_writes_one_report_with_the_risky_changes_first(
    sandbox: Sandbox, workdir: Path, monkeypatch, capsys
) -> None:
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_OK
    shorten_staging_tiering()
    summary = workdir / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    capsys.readouterr()
    assert cli.main(["ci", "--plan-only", "--all", "--branch", "feature/x", "--detailed-exitcode"]) == cli.EXIT_CHANGES
    out = capsys.readouterr().out
    assert out.startswith("plexus-infra ci: plan-only of every environment (branch feature/x from --branch)\n")
    assert "Summary of 3 environments" in out
    report = (workdir / "plan-artifacts/report.md").read_text()
    assert report.startswith("<!-- plexus-infra-plan-report -->\n## plexus-infra plan: 3 environments\n")
    warning = report[report.index("> [!WARNING]") : report.index("| environment")]
    assert (
        "- **staging**: ⚠️ data loss `s3_bucket_lifecycle.plexus-staging-training`: rule tier-training-data moves "
        "training-data/ to GLACIER after 60 days (was 90)"
    ) in warning
    assert "| staging | 123456789012 | us-east-1 | 0 | 1 | 0 | yes | 1 | changes |" in report
    assert "### development: Plan: 10 to add, 0 to change, 0 to destroy." in report
    assert "<details><summary>The plan (" in report  # development's 10 creations are folded
    for environment in ("development", "staging", "production"):
        saved = json.loads((workdir / f"plan-artifacts/{environment}/plan.json").read_text())
        assert saved["environment"] == environment
    assert summary.read_text() == report
    assert published("staging") and not published("development")  # nothing applied


def test_ci_refuses_a_plan_that_can_lose_data_in_a_retained_environment_unless_allowed(
    sandbox: Sandbox, workdir: Path, capsys
) -> None:
    assert cli.main(["ci", "--branch", "staging"]) == cli.EXIT_OK
    shorten_staging_tiering()
    capsys.readouterr()
    assert cli.main(["ci", "--branch", "staging"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err == (
        "error: the plan for staging can lose data: s3_bucket_lifecycle.plexus-staging-training: rule "
        "tier-training-data moves training-data/ to GLACIER after 60 days (was 90); nothing was applied. Review the "
        "plan, then rerun with --allow-data-loss to apply it\n"
    )
    rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket="plexus-staging-training")["Rules"]
    assert {"Days": 90, "StorageClass": "GLACIER"} in next(r for r in rules if r["ID"] == "tier-training-data")[
        "Transitions"
    ]
    assert cli.main(["ci", "--branch", "staging", "--allow-data-loss"]) == cli.EXIT_OK
    assert cli.main(["plan", "--env", "staging", "--detailed-exitcode"]) == cli.EXIT_OK


def test_the_reviewed_plan_is_the_one_applied_and_only_while_nothing_moved(
    sandbox: Sandbox, workdir: Path, capsys
) -> None:
    """The plan job saves production's plan; after a person approves, the apply job applies exactly that file."""
    assert cli.main(["ci", "--plan-only", "--env", "production", "--branch", "main"]) == cli.EXIT_OK
    reviewed = "plan-artifacts/plan.json"
    assert cli.main(["ci", "--apply-plan", reviewed, "--branch", "staging"]) == cli.EXIT_ERROR
    assert (
        "is a plan for production, but branch staging deploys to staging; nothing was applied"
        in capsys.readouterr().err
    )
    assert not published("production")
    assert cli.main(["ci", "--apply-plan", reviewed, "--branch", "main"]) == cli.EXIT_OK
    assert published("production")
    assert cli.main(["ci", "--apply-plan", reviewed, "--branch", "main"]) == cli.EXIT_ERROR  # the world moved: stale
    assert "Saved plan plan-artifacts/plan.json is stale" in capsys.readouterr().err
