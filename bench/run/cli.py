"""`bench run`: the benchmark matrix into results/<run_id>/, then its tables and report.html."""

from __future__ import annotations

import argparse
import signal

from bench.options import (
    add_allow_python_protobuf,
    add_dry_run,
    add_impls,
    add_libvirt_uri,
    add_max_reruns,
    add_repeats,
    add_results_dir,
    add_seed,
    add_steal_threshold,
    add_targets,
    parse_impls,
    parse_target,
    split_list,
)
from bench.run.runner import Run, RunOptions

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocols", default="grpc,rest,soap", help="protocols to compare (default: all three)"
    )
    parser.add_argument(
        "--clients",
        default=None,
        help="client kinds instead of --protocols' defaults (grpc, rest-lean, soap-lean); e.g. "
        "grpc,rest,rest-lean,soap,soap-lean to separate client-library cost",
    )
    parser.add_argument(
        "--engine",
        choices=("native", "python", "both"),
        default="both",
        help="native: compiled load tools (wrk, h2load, gload) measure server capacity and latency under "
        "load; python: locust and the Python clients measure the client experience (default: both)",
    )
    parser.add_argument(
        "--scenarios",
        default=None,
        help="scenarios from bench/load/scenarios.toml for every engine (default: getbook for the native "
        "engine, mixed for the python engine)",
    )
    parser.add_argument("--native-scenarios", default="getbook", help="the native engine's scenarios")
    parser.add_argument("--python-scenarios", default="mixed", help="the python engine's scenarios")
    parser.add_argument(
        "--aa-arm",
        default=None,
        metavar="PROTOCOL",
        help="the native arm scheduled twice as an A/A pair (default: the first of --protocols; 'none')",
    )
    add_impls(parser, default="python", what="measure, each beside the others (verified first)")
    add_targets(parser, what="measure beside the built-in ones (verified first; see README)")
    parser.add_argument(
        "--topology",
        choices=("single", "split"),
        default="single",
        help="single: one process per target (default); split: the REST gateway over a books and a "
        "circulation service, one arm per --backend-protocols",
    )
    parser.add_argument(
        "--backend-protocols",
        default="grpc,rest,soap",
        help="split topology: the protocols between the gateway and its services to compare (default: all)",
    )
    parser.add_argument(
        "--generator-cpus",
        default="auto",
        metavar="CPUS",
        help="the load generator's CPUs, e.g. 0,2,3 or 0-3 (default auto: one CPU; the target keeps the last "
        "other one); the native tools run a thread per CPU and the python engine a locust worker per CPU",
    )
    parser.add_argument(
        "--inject-delay",
        type=float,
        default=0.0,
        metavar="MICROSECONDS",
        help="every target this run starts busy-waits this long per call: a deliberately slowed run, to see "
        "`bench compare` find it (default: 0)",
    )
    parser.add_argument("--profiles", default="local", help="vm_profiles to run on (default: local = no VM)")
    add_repeats(parser, unit="repetitions of each native cell and of the floor cells")
    parser.add_argument(
        "--python-repeats",
        type=int,
        default=7,
        help="repetitions of each python (client-experience) cell (default: 7: a 10 %% difference in GetBook "
        "p50 at 1 user found with about 80 %% power here; see `bench power`)",
    )
    parser.add_argument(
        "--vm-repeats",
        type=int,
        default=None,
        help="repetitions per cell inside guests (default: 1 when quick)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured window")
    parser.add_argument(
        "--quick", action="store_true", help="short windows (the default when --duration is absent)"
    )
    parser.add_argument(
        "--thorough",
        action="store_true",
        help="publication-grade: 5 s windows, more load levels and rates; combine with --repeats 9",
    )
    add_seed(parser, what="the run order and the workloads")
    add_steal_threshold(parser)
    add_max_reruns(parser, what="cell (CPU steal above the threshold)")
    parser.add_argument(
        "--rerun-budget",
        type=float,
        default=0.2,
        help="re-runs allowed in the whole run, as a fraction of its cells (default 0.2): bounds the run's "
        "length when the host is noisy; beyond it noisy cells are kept and flagged",
    )
    parser.add_argument(
        "--locust-workers", type=int, default=0, help="closed model as locust master + N workers"
    )
    parser.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        help="locust workers on other machines to wait for (each cell)",
    )
    parser.add_argument(
        "--master-bind", default="127.0.0.1", help="address the locust master listens on (remote workers)"
    )
    parser.add_argument(
        "--master-port", type=int, default=0, help="locust master port (fixed for remote workers)"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds before a call counts as failed (default 10)",
    )
    add_results_dir(parser)
    parser.add_argument("--resume", metavar="RUN_ID", help="complete an interrupted run")
    parser.add_argument("--no-report", action="store_true", help="skip tables and report at the end")
    add_dry_run(parser, what="the plan (and guest XML)")
    add_libvirt_uri(parser)
    add_allow_python_protobuf(parser)


def _options(args: argparse.Namespace) -> RunOptions:
    both = split_list(args.scenarios) if args.scenarios else None
    return RunOptions(
        protocols=split_list(args.protocols),
        clients=split_list(args.clients) if args.clients else None,
        engines=["native", "python"] if args.engine == "both" else [args.engine],
        native_scenarios=both or split_list(args.native_scenarios),
        python_scenarios=both or split_list(args.python_scenarios),
        profiles=split_list(args.profiles),
        repeats=args.repeats,
        python_repeats=args.python_repeats,
        vm_repeats=args.vm_repeats,
        duration_s=args.duration,
        quick=args.quick,
        thorough=args.thorough,
        seed=args.seed,
        steal_threshold_pct=args.steal_threshold,
        max_reruns=args.max_reruns,
        rerun_budget=args.rerun_budget,
        locust_workers=args.locust_workers,
        remote_workers=args.remote_workers,
        master_bind=args.master_bind,
        master_port=args.master_port,
        request_timeout_s=args.request_timeout,
        libvirt_uri=args.libvirt_uri,
        aa_arm=args.aa_arm,
        impls=tuple(parse_impls(args.impls)),
        topology=args.topology,
        inject_delay_us=args.inject_delay,
        generator_cpus=args.generator_cpus,
        backend_protocols=tuple(split_list(args.backend_protocols)),
        external=tuple(parse_target(text) for text in args.targets),
    )


def run(args: argparse.Namespace) -> int:
    from bench.run.manifest import require_fast_protobuf

    require_fast_protobuf(allow_python=args.allow_python_protobuf)
    if args.resume:
        run_obj = Run.load(args.results_dir / args.resume)
    else:
        run_obj = Run.create(_options(args), args.results_dir, dry_run=args.dry_run)
    if args.dry_run:
        _print_plan(run_obj)
        return 0

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: finished cells stay, the run can resume

    signal.signal(signal.SIGTERM, terminate)
    with run_obj.locked():
        return _execute(run_obj, build_report=not args.no_report)


def _print_plan(run_obj: Run) -> None:
    from bench.load.native.engine import preview
    from bench.load.scenarios import load_scenarios
    from bench.run.guest_cells import dry_run_guest

    print(f"run {run_obj.run_id}: {len(run_obj.plan)} cells, seed {run_obj.options['seed']}")
    for spec in run_obj.plan:
        target = "-" if spec.target_cpu is None else spec.target_cpu
        generator = ",".join(str(c) for c in spec.generators) or "-"
        print(f"  {spec.cell_id:40} target cpu {target}  generator cpu {generator}")
    shown: set[tuple[str, str]] = set()
    for spec in run_obj.plan:
        key = (spec.protocol, spec.scenario)
        if spec.engine != "native" or spec.kind not in ("load", "pilot") or key in shown:
            continue
        shown.add(key)
        print(f"native tools, {spec.protocol} {spec.scenario}:")
        scenario = load_scenarios()[spec.scenario]
        seconds = spec.settings.native_window_s
        for line in preview(spec.protocol, scenario, cpu=spec.generators or None, seconds=seconds):
            print(f"  {line}")
    for tool, version in run_obj.manifest.get("native_tools", {}).items():
        print(f"  {tool}: {version}")
    for profile in run_obj.options["profiles"]:
        if profile != "local":
            dry_run_guest(profile, uri=run_obj.options.get("libvirt_uri"))


def _execute(run_obj: Run, *, build_report: bool) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from bench.rawfiles import RawFileError
    from bench.rundir import CellOutcome

    console = Console(stderr=True, soft_wrap=True)  # never wrap paths and commands the user may copy
    total = len(run_obj.plan)
    done = len(run_obj.finished_cells())
    console.print(f"[bold]bench run[/] {run_obj.run_id} -> {run_obj.dir}  ({total} cells, {done} done)")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    interrupted = False
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("cells", total=total, completed=done)

        def progress(cell_id: str, outcome: CellOutcome | None) -> None:
            if outcome is None:
                bar.update(task, description=f"{cell_id:36}")
                return
            bar.advance(task)
            note = []
            if outcome.status != "ok":
                note.append(f"[red]failed[/]: {outcome.reason}")
            if outcome.flagged:
                note.append(
                    f"[yellow]noisy: steal {outcome.max_steal_pct:.1f} %, other processes "
                    f"{outcome.max_other_cpu_pct:.0f} % of a CPU (flagged)[/]"
                )
            if outcome.generator_limited:
                # Only those windows are excluded from the verdicts; the cell's other windows still count.
                where = ", ".join(outcome.generator_limited_windows) or "a window"
                note.append(f"[yellow]generator-limited in {where} (backs no verdict)[/]")
            if note:
                bar.console.print(f"  {cell_id}: " + "; ".join(note))

        try:
            run_obj.execute(progress)
        except KeyboardInterrupt:
            interrupted = True
            run_obj.interrupt()
        except RawFileError as exc:
            console.print(
                f"[red]bench run: {exc}[/] — finished cells are safe; fix it and resume with "
                f"bench run --resume {run_obj.run_id}"
            )
            return 1
    if interrupted:
        run_obj.finish("interrupted")
        console.print(
            f"[yellow]interrupted[/]: finished cells are on disk; complete the run with\n"
            f"  bench run --resume {run_obj.run_id}"
        )
        return 130
    run_obj.finish("complete")
    if not build_report:
        return 0
    # The one place a run reaches the report: the runner never imports it (layers, docs/ARCHITECTURE.md).
    from bench.report.build import build_report as make_report

    path = make_report(run_obj.dir)
    console.print(f"report: {path}")
    return 0
