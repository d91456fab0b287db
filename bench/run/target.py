"""The target a cell measures: a fresh process of one implementation, a running one someone else started
(`--target`), or the split topology's three processes (`--topology split`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load.processes import ExternalTarget, TargetProcess, start_target
from bench.run.plan import CellSpec

if TYPE_CHECKING:
    from topology.launch import SplitTopology

__all__ = ["cell_target", "check_alive"]


def cell_target(spec: CellSpec, *, dataset: str, out: Path) -> TargetProcess | ExternalTarget | SplitTopology:
    """Start (or find) the cell's target, with its call counters on; pinned to the target CPU."""
    if spec.address:
        return ExternalTarget.at(spec.protocol, spec.address)
    if spec.backend:
        from topology.launch import start_split

        # On 2 CPUs the three processes share the target CPU; the generator keeps its own.
        return start_split(
            spec.backend,
            dataset=dataset,
            seed=spec.seed % 1000,
            cpu=spec.target_cpu,
            stderr_dir=out,
            metrics=True,
        )
    return start_target(
        spec.protocol,
        dataset=dataset,
        seed=spec.seed % 1000,
        cpu=spec.target_cpu,
        stderr_path=out / "target.stderr",
        metrics=True,
        impl=spec.impl,
        inject_delay_us=spec.inject_delay_us,
    )


def check_alive(spec: CellSpec, target: Any) -> None:
    """RuntimeError("<protocol> target exited with code N: <stderr tail>") once a target process died."""
    if target is None or getattr(target, "outage", None) or target.alive():
        return  # (a fault injected on purpose: the process is being restarted)
    process = getattr(target, "process", None)
    code = f" with code {process.returncode}" if process is not None else ""
    what = (
        f"split topology ({spec.backend} backends): a process" if spec.backend else f"{spec.protocol} target"
    )
    raise RuntimeError(f"{what} exited{code}: {target.stderr_tail(800).strip()[-400:]}")
