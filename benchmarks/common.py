"""What the benchmarks share: timing a whole process and reading the API calls it reports (`--stats`)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

CALLS = re.compile(r"AWS API calls: (\d+) \((\d+) writes\)")


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int]:
    """Wall time of a whole process, and the API calls and writes it reports (its last --stats line)."""
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 2):
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    counts = CALLS.findall(result.stderr)
    calls, writes = (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)
    return elapsed, calls, writes
