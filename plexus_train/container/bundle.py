"""What ships into SageMaker: `plexus_train/__init__.py` and this package, a one-line entry script and
requirements.txt, which the framework containers install first.

Training jobs get it as `sourcedir.tar.gz` (entry `train.py`, the `sagemaker_program`); every saved model carries
it as `code/` (entry `inference.py`, which the PyTorch serving container imports), so a model trained inside a
job ships the same code again. Nothing else of plexus_train goes: what ships imports only itself, the standard
library, torch, transformers (and its tokenizers), numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

CONTAINER_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = CONTAINER_DIR.parent  # plexus_train/, of which only __init__.py ships
TRAINING_ENTRY = "train.py"
INFERENCE_ENTRY = "inference.py"
REQUIREMENTS = "requirements.txt"
# The container's own torch is kept: it is never listed. transformers is pinned by `requirements`.
# onnxruntime: training jobs check the model's ONNX form (`portable`), endpoints answer with it. onnx, which torch's
# exporter needs, only for training: an endpoint does not install it at every cold start.
REQUIRED = ("transformers>=5,<6", "numpy", "onnxruntime>=1.18")
TRAINING_ONLY = ("onnx>=1.16",)

ENTRY_SCRIPTS = {
    TRAINING_ENTRY: (
        '"""SageMaker script-mode entry (`sagemaker_program`): plexus_train.container.entrypoint."""\n\n'
        "from plexus_train.container.entrypoint import main\n\n"
        'if __name__ == "__main__":\n'
        "    raise SystemExit(main())\n"
    ),
    INFERENCE_ENTRY: (
        '"""SageMaker PyTorch serving entry (code/inference.py): plexus_train.container.inference."""\n\n'
        "from plexus_train.container.inference import input_fn, model_fn, output_fn, predict_fn\n\n"
        '__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n'
    ),
}


def code_files() -> dict[str, Path]:
    """Archive name → source file of the Python code that ships (the entry script and requirements.txt are
    written, not copied)."""
    files = {"plexus_train/__init__.py": PACKAGE_DIR / "__init__.py"}
    for path in sorted(CONTAINER_DIR.rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[f"plexus_train/{path.relative_to(PACKAGE_DIR).as_posix()}"] = path
    return files


def requirements(installed: str | None = None, training: bool = True) -> str:
    """requirements.txt for the framework containers (training jobs, else endpoints): transformers pinned to the
    major version installed here (the one that trains and saves the artifacts), else to the one this code is
    written for.

    Example: `requirements("5.1.0").splitlines()[0] == "transformers>=5,<6"`
    """
    if installed is None:
        try:
            installed = metadata.version("transformers")
        except metadata.PackageNotFoundError:
            installed = None
    lines = [*REQUIRED, *(TRAINING_ONLY if training else ())]
    if installed:
        major = int(installed.split(".")[0])
        lines = [f"transformers>={major},<{major + 1}" if line.startswith("transformers") else line for line in lines]
    return "\n".join(lines) + "\n"


def copy_code(destination: Path, entry: str) -> None:
    """Write the code bundle whose entry script is `entry` (TRAINING_ENTRY or INFERENCE_ENTRY) into
    `destination` (created if needed)."""
    destination.mkdir(parents=True, exist_ok=True)
    (destination / entry).write_text(ENTRY_SCRIPTS[entry], encoding="utf-8")
    (destination / REQUIREMENTS).write_text(requirements(training=entry == TRAINING_ENTRY), encoding="utf-8")
    for name, source in code_files().items():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
