"""`bench vm migrate PROFILE`: live-migrate a guest that serves a target under load; figures and a report.

The one module of bench.vm that imports bench.report (declared in .importlinter): once every migration is
done it writes the report page, as `bench run` does for its runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.options import add_dry_run, add_libvirt_uri, add_repeats, add_seed, split_list

__all__ = ["add_arguments", "run"]

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_WINDOW_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.vm.migrate._load import DEFAULT_DIRTY_MIB_S, LEVELS, PROTOCOL_IMPORTS

    parser.add_argument("profile", help="profile name (vm_profiles/<name>.toml) or path to a .toml file")
    parser.add_argument(
        "--to",
        metavar="URI",
        default=None,
        help="destination libvirt, e.g. qemu+ssh://host/system (default: a second private libvirtd on this "
        "host; another host must see the guest files at the same paths)",
    )
    add_repeats(parser, unit="migrations per load level")
    parser.add_argument(
        "--loads",
        default=",".join(LEVELS),
        help=f"comma-separated load levels inside the guest: {', '.join(LEVELS)} (default: all)",
    )
    parser.add_argument(
        "--dirty-rate",
        type=int,
        default=DEFAULT_DIRTY_MIB_S,
        metavar="MIB_S",
        help=f"guest memory the 'dirty' level rewrites per second, MiB/s (default {DEFAULT_DIRTY_MIB_S})",
    )
    parser.add_argument(
        "--protocol", choices=list(PROTOCOL_IMPORTS), default="grpc", help="the guest's target (default grpc)"
    )
    parser.add_argument(
        "--max-downtime",
        type=int,
        metavar="MS",
        help="longest pause QEMU may take to switch over, in ms (default: QEMU's, 300)",
    )
    parser.add_argument(
        "--bandwidth", type=int, metavar="MIB_S", help="cap the migration stream, MiB/s (default: none)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds one migration may take before it is aborted (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_S,
        help=f"seconds of load watched before and after each migration (default {DEFAULT_WINDOW_S:g})",
    )
    parser.add_argument(
        "--transport",
        choices=["unix", "tcp"],
        default=None,
        help="how the private daemons' QEMUs send the memory: a unix socket (default) or TCP on 127.0.0.1",
    )
    parser.add_argument("--out", type=Path, help="output dir (default results/vm-migrate-<timestamp>)")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_seed(parser, what="the interleaved order of the repeats")
    add_dry_run(parser, what="the daemons, the migration call and the domain XML")
    add_libvirt_uri(parser, default="$BENCH_LIBVIRT_URI, else a private libvirtd on this host: the source")


def _plan(args: argparse.Namespace) -> Any:
    from bench.vm.connection import URI_ENV
    from bench.vm.migrate._load import LEVELS
    from bench.vm.migrate.plan import plan_migrations
    from bench.vm.profiles import find_profile

    levels = tuple(split_list(args.loads))
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown or not levels:
        raise UsageError(f"--loads {args.loads!r}: choose from {', '.join(LEVELS)}")
    for value, option in ((args.timeout, "--timeout"), (args.window, "--window")):
        if value <= 0:
            raise UsageError(f"{option} must be positive, got {value:g}")
    for value, option in (
        (args.max_downtime, "--max-downtime"),
        (args.bandwidth, "--bandwidth"),
        (args.dirty_rate, "--dirty-rate"),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")
    return plan_migrations(
        find_profile(args.profile),
        levels=levels,
        repeats=args.repeats,
        seed=args.seed,
        protocol=args.protocol,
        source_uri=args.libvirt_uri or os.environ.get(URI_ENV) or None,
        destination_uri=args.to,
        transport=args.transport,
        max_downtime_ms=args.max_downtime,
        bandwidth_mib_s=args.bandwidth,
        timeout_s=args.timeout,
        window_s=args.window,
        dirty_mib_s=args.dirty_rate,
    )


def dry_run_text(plan: Any, out: Path) -> str:
    """The plan, both daemons, the migration call and both domain XMLs, without starting anything."""
    from bench.vm.domain_xml import domain_xml, placeholder_runtime
    from bench.vm.guest import cached_guest, placeholder_guest
    from bench.vm.migrate._load import LOAD_PORT
    from bench.vm.migrate.daemons import daemon_user, daemons_base
    from bench.vm.migrate.daemons import dry_run_text as daemons_text
    from bench.vm.migrate.image import mksquashfs_argv
    from bench.vm.migrate.live import MigrationRequest

    run_root = daemons_base() / "RUN"
    guest = cached_guest() or placeholder_guest()
    guest = dataclasses.replace(
        guest, kernel=run_root / "files" / "vmlinuz", initrd=run_root / "files" / "initrd"
    )
    guest_dir = run_root / "guests" / "GUEST"
    base = placeholder_runtime(plan.profile, mode="migrate")
    source = dataclasses.replace(
        base,
        serial_log=guest_dir / "serial.source.log",
        load_log=guest_dir / "load.source.log",
        image=run_root / "files" / "image.squashfs",
        load_port=LOAD_PORT,
        cmdline_extra=(f"bench_load={plan.levels[0]}", f"bench_protocol={plan.protocol}"),
    )
    destination = dataclasses.replace(
        source, serial_log=guest_dir / "serial.destination.log", load_log=guest_dir / "load.destination.log"
    )
    migrate_uri, listen = {
        "unix": (f"unix://{run_root}/migrate/1.sock", None),
        "tcp": ("tcp://127.0.0.1", "127.0.0.1"),
        None: (None, None),
    }[plan.transport]
    request = MigrationRequest(
        dconnuri=plan.destination_uri or f"qemu+unix:///session?socket={run_root}/dst/sock/libvirt-sock",
        migrate_uri=migrate_uri,
        listen_address=listen,
        dest_xml="",
        max_downtime_ms=plan.max_downtime_ms,
        bandwidth_mib_s=plan.bandwidth_mib_s,
        timeout_s=plan.timeout_s,
    )
    lines = [
        f"profile: {plan.profile.name}; load levels: {', '.join(plan.levels)}; protocol: {plan.protocol}",
        f"order (seed {plan.seed}): {', '.join(f'{level}-{repeat}' for level, repeat in plan.order)}",
        f"output: {out}",
        f"source: {plan.source_uri or 'private session libvirtd (below)'}",
        f"destination: {plan.destination_uri or 'private session libvirtd (below)'}",
        "",
        "# guest image: " + " ".join(mksquashfs_argv(Path("STAGING"), Path("image.squashfs"))),
        "",
    ]
    if plan.source_uri is None or plan.destination_uri is None:
        lines.append(daemons_text(run_root, daemon_user()))
    lines.append(f"# migrateToURI3({request.dconnuri!r}, params, {' | '.join(request.flag_names())})")
    lines += [f"#   {key} = {value}" for key, value in request.param_items().items()]
    downtime = f"{plan.max_downtime_ms} ms" if plan.max_downtime_ms else "QEMU's default"
    lines.append(f"# max downtime: {downtime}; abort after {plan.timeout_s:g} s")
    lines += ["", "# source domain", domain_xml(plan.profile, guest, source)]
    lines += ["# destination domain (the same guest; its own serial and load files)"]
    lines.append(domain_xml(plan.profile, guest, destination))
    return "\n".join(lines)


def _num(value: float) -> str:
    """Three significant digits, all integer digits kept, never an exponent."""
    return f"{value:,.0f}" if abs(value) >= 99.95 else f"{value:.3g}"


def _fmt(stat: object) -> str:
    if not isinstance(stat, tuple):
        return "n/a"
    q1, median, q3 = stat
    return f"{_num(median)} [{_num(q1)}–{_num(q3)}]"


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from bench.vm.cache import project_root
    from bench.vm.connection import Terminated, signals_raise
    from bench.vm.migrate.runner import SUMMARY_KEYS, run_migrations, summarise

    plan = _plan(args)
    out: Path = args.out or project_root() / "results" / f"vm-migrate-{datetime.now():%Y%m%d-%H%M%S}"
    if args.dry_run:
        print(dry_run_text(plan, out))
        return 0
    console = Console(stderr=True)
    try:
        with (
            signals_raise(),
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task("preparing the guest …", total=len(plan.order))

            def report(label: str, done: int, total: int) -> None:
                progress.update(task, description=f"migrating: {label}", completed=done, total=total)

            records = run_migrations(plan, out, log=progress.console.print, progress=report)
    except Terminated as exc:
        print(f"bench vm migrate: {exc}; guests and daemons were stopped", file=sys.stderr)
        return 128 + exc.signum

    # Columns in the order the levels were asked for, whatever order they ran in.
    summary = {level: entry for level in plan.levels if (entry := summarise(records).get(level))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    emulated = any(r.get("emulated") for r in records)
    title = f"live migration, median [IQR] per load level{' (emulated: TCG)' if emulated else ''}\n{out}"
    table = Table(title=title)
    table.add_column("figure")
    for level in summary:
        table.add_column(level, justify="right")
    table.add_row("ok / repeats", *(f"{e['ok']} / {e['n']}" for e in summary.values()))
    for key, heading in SUMMARY_KEYS.items():
        table.add_row(heading, *(_fmt(entry.get(key)) for entry in summary.values()))
    Console().print(table)
    with (out / "summary.txt").open("w") as handle:
        Console(file=handle, width=200).print(table)
    failures = [r for r in records if r.get("outcome") != "ok"]
    for record in failures:
        console.print(
            f"[red]{record['level']} repeat {record['repeat']}[/]: {record['outcome']}: {record['reason']}"
        )
    print(f"raw records: {out / 'migrations.jsonl'}")
    if not args.no_report:
        from bench.report.migration import build_migration_report

        print(f"report: {build_migration_report(out)}")
    return 1 if failures else 0
