"""The SageMaker container path, for real but without Docker: the packaged entry scripts run from an extracted
sourcedir.tar.gz (with the SM_* variables SageMaker sets) and from the code/ of an extracted model.tar.gz, each
in an isolated interpreter that sees only the extracted code, the standard library and site-packages, and
refuses plexus_infra, YAML, boto3, botocore, rich and jsonschema to the shipped code: what ships stands alone."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from plexus_train.container.bundle import INFERENCE_ENTRY, REQUIREMENTS, TRAINING_ENTRY
from plexus_train.packaging import write_tarball
from plexus_train.platforms.sagemaker import build_sourcedir
from plexus_train.scorecards import find_score
from tests.train.helpers import DEMO_DATA

MODEL = Path("models") / "test-scorecard-v-1-0" / "ticket-topic"
# What the host side of plexus uses and the shipped code must not: refused to it, and plexus_infra to everyone.
REFUSED = ("plexus_infra", "yaml", "boto3", "botocore", "rich", "jsonschema")

ISOLATION = """\
import sys

CODE, REFUSED = {code!r}, {refused!r}


def importer():
    frame = sys._getframe(2)
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen importlib") or "/importlib/" in frame.f_code.co_filename
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


class Refuse:
    \"\"\"Refuses REFUSED to the shipped code (transformers' own dependencies may import YAML: they ship in the
    container too), and plexus_infra to everyone; every refusal is printed, in case something swallows it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        top, where = name.partition(".")[0], importer()
        if top in REFUSED and (top == "plexus_infra" or where.startswith(CODE)):
            print(f"REFUSED {{name}} to {{where}}", flush=True)
            raise ImportError(f"the container code may not import {{name}} ({{where}})")
        return None


# Only the extracted code, the standard library and site-packages: not the checkout, nor its editable install.
sys.meta_path[:] = [Refuse(), *(f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", ""))]
sys.path[:] = [CODE, *(p for p in sys.path if p.startswith((sys.prefix, sys.base_prefix)))]
"""


def isolated(code: Path, program: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`program` after ISOLATION in a fresh `python -I` run from `code` (as the containers run it)."""
    source = ISOLATION.format(code=str(code), refused=REFUSED) + program
    result = subprocess.run(
        [sys.executable, "-I", "-c", source],
        cwd=code,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "REFUSED" not in result.stdout, result.stdout
    return result


def shipped_code(names: list[str]) -> set[str]:
    """The archive's files other than a bundled base model."""
    return {name for name in names if not name.startswith("base_model/")}


def test_packaged_entry_script_trains_a_loadable_model(project: Path, tmp_path_factory) -> None:
    score = find_score("Test Scorecard v 1.0", "Ticket Topic")
    tarball, embeddings = build_sourcedir(score, tmp_path_factory.mktemp("upload") / "sourcedir.tar.gz")
    assert embeddings == "base_model"
    code = tmp_path_factory.mktemp("opt-ml-code")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        archive.extractall(code, filter="data")
    assert {"train.py", "requirements.txt", "plexus_train/container/entrypoint.py", "base_model/config.json"} <= set(
        names
    )
    assert "transformers" in (code / "requirements.txt").read_text()
    others = {TRAINING_ENTRY, REQUIREMENTS, "plexus_train/__init__.py"}
    assert {n for n in shipped_code(names) if not n.startswith("plexus_train/container/")} == others

    ml = tmp_path_factory.mktemp("opt-ml")
    channel = ml / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "data.csv").write_bytes(DEMO_DATA.read_bytes())
    hyperparameters = {
        **score.config.to_hyperparameters(),
        "embeddings_model": '"base_model"',
        "label_column": '"topic"',
    }
    hyperparameters["plexus_score"] = '"Ticket Topic"'
    environ = {
        "SM_HPS": json.dumps({key: json.loads(value) for key, value in hyperparameters.items()}),
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
        "SM_NUM_GPUS": "0",
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
    }
    # An isolated interpreter (-I ignores PYTHONPATH and the user site; the checkout is not on sys.path) run
    # from the code directory, as the container does: everything it imports comes from the tarball.
    probe = (
        "import runpy; sys.argv = ['train.py']; runpy.run_path('train.py', run_name='__main__')\n"
        "import plexus_train; assert plexus_train.__file__.startswith(CODE), plexus_train.__file__\n"
    )
    result = isolated(code, probe, environ)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 2:" in result.stdout

    from plexus_train.container import inference

    model_dir = ml / "model"
    assert (ml / "output" / "data" / "training_history.json").is_file()
    assert json.loads((model_dir / "config.json").read_text())["score"] == "Ticket Topic"
    model = inference.model_fn(str(model_dir))
    answer = inference.predict_fn({"texts": ["my invoice is wrong"], "batch": False}, model)["predictions"][0]
    assert answer["value"] in {"billing", "shipping", "technical"}


def test_a_model_archives_code_serves_predictions_on_its_own(trained: Path, tmp_path: Path) -> None:
    """model.tar.gz as provisioning uploads it; the serving container extracts it and imports code/inference.py."""
    tarball = write_tarball(trained / MODEL, tmp_path / "model.tar.gz")
    extracted = tmp_path / "opt-ml-model"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        archive.extractall(extracted, filter="data")
    code = {name.removeprefix("code/") for name in names if name.startswith("code/")}
    assert {n for n in code if not n.startswith("plexus_train/container/")} == {
        INFERENCE_ENTRY,
        REQUIREMENTS,
        "plexus_train/__init__.py",
    }
    probe = (
        "import json, inference\n"
        f"model = inference.model_fn({str(extracted)!r})\n"
        "texts = inference.input_fn(json.dumps({'text': 'the courier never arrived'}), 'application/json')\n"
        "print(inference.output_fn(inference.predict_fn(texts, model), 'application/json'))\n"
        "batch = inference.input_fn(json.dumps({'text': ['my invoice is wrong', 'the app crashes']}))\n"
        "print(inference.output_fn(inference.predict_fn(batch, model)))\n"
        "assert inference.__file__.startswith(CODE) and 'plexus_infra' not in sys.modules\n"
    )
    result = isolated(extracted / "code", probe, {})
    assert result.returncode == 0, result.stderr[-2000:]
    *_, one, batch = result.stdout.strip().splitlines()
    answer = json.loads(one)
    assert answer["value"] in {"billing", "shipping", "technical"} and set(answer) == {
        "value",
        "confidence",
        "probabilities",
    }
    assert [set(each) for each in json.loads(batch)] == [set(answer)] * 2


def test_entry_script_reports_bad_data_as_the_failure_reason(tmp_path: Path) -> None:
    from plexus_train.container.entrypoint import main

    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "data.csv").write_text("text,label\nhello,a\nworld,a\n")
    environ = {
        "SM_HPS": "{}",
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
    }
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, environ):
        assert main() == 1
    assert "single class" in (tmp_path / "output" / "failure").read_text()
    assert not (tmp_path / "model").exists()
