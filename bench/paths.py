"""Where things are: the checkout, the results directory, a run's directory (a leaf module)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO", "RESULTS_DIR", "WSDL_FILE", "run_dir"]

REPO = Path(__file__).resolve().parents[1]
# Output only; BENCH_RESULTS moves it (tests, or a bigger disk).
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS", REPO / "results"))
WSDL_FILE = REPO / "wsdl" / "library.wsdl"


def run_dir(run_id: str | Path, results_dir: Path | None = None) -> Path:
    """A run's directory, from its id (a directory name under the results dir) or from a path."""
    path = Path(run_id)
    if path.is_dir():
        return path
    base = results_dir or RESULTS_DIR
    candidate = base / str(run_id)
    if not candidate.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {base}")
    return candidate
