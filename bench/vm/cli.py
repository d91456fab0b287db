"""`bench vm …`: domain XML, guest build, KVM probe, boot timing, commands in a guest, live migration."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import UsageError
from bench.options import add_dry_run, add_libvirt_uri, add_repeats, add_seed
from bench.vm.migrate import cli as migrate_cli

if TYPE_CHECKING:
    from bench.vm.profiles import VmProfile

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vm_command", required=True, metavar="VM_COMMAND")

    xml = sub.add_parser(
        "xml", help="print a profile's domain XML (placeholder paths if the guest is not built)"
    )
    xml.add_argument("profile", help="profile name (vm_profiles/<name>.toml) or path to a .toml file")
    xml.add_argument(
        "--accel", choices=["kvm", "tcg"], default="tcg", help="domain type to print (default tcg)"
    )
    xml.add_argument("--mode", choices=["run", "boot"], default="run", help="guest init mode (default run)")

    boot = sub.add_parser("boot", help="time guest boots per profile: phases, median and IQR")
    boot.add_argument("--profiles", default="", help="comma-separated profile names (default: all)")
    add_repeats(boot, unit="boots per profile")
    boot.add_argument("--out", type=Path, help="output dir (default results/vm-boot-<timestamp>)")
    boot.add_argument(
        "--timeout", type=float, help="seconds per boot (default: the profile's boot_timeout_s)"
    )
    add_seed(boot, what="the shuffled boot order")
    add_dry_run(boot, what="the plan and the XML")
    add_libvirt_uri(boot)

    run_p = sub.add_parser("run", help="run a command inside a fresh guest (after --)")
    run_p.add_argument("profile")
    run_p.add_argument("--results", type=Path, help="results dir shared with the guest (default: a new one)")
    run_p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for boot + command (default 600)"
    )
    add_libvirt_uri(run_p)
    # REMAINDER: everything after the profile; options placed there before `--` are parsed in _run.
    run_p.add_argument("argv", nargs=argparse.REMAINDER, help="[--timeout S] [--results DIR] -- command …")

    migrate = sub.add_parser(
        "migrate", help="live-migrate a guest that serves a target under load: total time, downtime, latency"
    )
    migrate_cli.add_arguments(migrate)

    sub.add_parser("build", help="download the Debian kernel and build the initramfs (cached)")
    accel = sub.add_parser("accel", help="probe whether KVM guests boot here (cached per host boot)")
    accel.add_argument("--refresh", action="store_true", help="probe again even if a result is cached")
    add_libvirt_uri(accel)
    sub.add_parser("profiles", help="list the profiles, their firmware and whether they can run here")
    for name, command in sub.choices.items():
        command.set_defaults(_name=f"bench vm {name}")


def run(args: argparse.Namespace) -> int:
    handlers = {
        "xml": _xml,
        "boot": _boot,
        "run": _run,
        "build": _build,
        "accel": _accel,
        "profiles": _profiles,
        "migrate": migrate_cli.run,
    }
    return handlers[args.vm_command](args)


def _xml(args: argparse.Namespace) -> int:
    from bench.vm.domain_xml import domain_xml, placeholder_runtime
    from bench.vm.guest import cached_guest, placeholder_guest
    from bench.vm.profiles import find_profile

    profile = find_profile(args.profile)
    guest = cached_guest() or placeholder_guest()
    sys.stdout.write(
        domain_xml(profile, guest, placeholder_runtime(profile, accel=args.accel, mode=args.mode))
    )
    return 0


def _selected_profiles(spec: str) -> list[VmProfile]:
    from bench.vm.profiles import find_profile, load_profiles

    if not spec:
        return list(load_profiles().values())
    return [find_profile(name.strip()) for name in spec.split(",") if name.strip()]


def _fmt(stat: object) -> str:
    if not isinstance(stat, tuple):
        return "n/a"
    q1, median, q3 = stat
    return f"{median:.2f} [{q1:.2f}–{q3:.2f}]"


def _boot(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from bench.vm.boottime import PHASE_COLUMNS, dry_run_text, plan_boots, run_boots, summarise
    from bench.vm.cache import project_root

    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    profiles = _selected_profiles(args.profiles)
    plan = plan_boots(profiles, args.repeats, seed=args.seed)
    out: Path = args.out or project_root() / "results" / f"vm-boot-{datetime.now():%Y%m%d-%H%M%S}"
    console = Console()
    if args.dry_run:
        print(dry_run_text(plan, profiles, uri=args.libvirt_uri, out=out))
        return 0
    for name, reason in plan.skipped.items():
        console.print(f"[yellow]skipped[/]: {name}: {reason}")
    if not plan.order:
        console.print("nothing to boot")
        return 0

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("preparing guest and accelerator …", total=len(plan.order))

        def report(name: str, done: int, total: int) -> None:
            label = f"booting {name}" if name else "done"
            progress.update(task, description=label, completed=done, total=total)

        records = run_boots(
            plan,
            repeats=args.repeats,
            out=out,
            uri=args.libvirt_uri,
            timeout_s=args.timeout,
            progress=report,
            log=lambda message: progress.update(task, description=message),
        )

    summary = summarise(records)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Phases as rows, profiles as columns: fits a terminal for the usual handful of profiles.
    table = Table(title=f"guest boot, seconds since the domain start request: median [IQR]\n{out}")
    table.add_column("phase")
    for name in summary:
        table.add_column(name, justify="right")
    for name in plan.skipped:
        table.add_column(name)
    skipped_cells = [f"skipped: {reason}" for reason in plan.skipped.values()]
    accels = [str(entry.get("accel")) for entry in summary.values()]
    table.add_row("accel", *(f"{a} (emulated)" if a == "tcg" else a for a in accels), *skipped_cells)
    table.add_row(
        "ok / boots", *(f"{e['ok']} / {e['n']}" for e in summary.values()), *([""] * len(plan.skipped))
    )
    for key, heading in PHASE_COLUMNS:
        table.add_row(
            heading, *(_fmt(entry.get(key)) for entry in summary.values()), *([""] * len(plan.skipped))
        )
    console.print(table)
    with (out / "summary.txt").open("w") as handle:
        Console(file=handle, width=200).print(table)
    failures = [r for r in records if r.get("outcome") != "ok"]
    for record in failures:
        console.print(f"[red]{record['profile']} boot {record.get('repeat')}[/]: {record.get('reason')}")
    console.print(f"raw records: {out / 'boots.jsonl'}")
    return 1 if failures else 0


def _run(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from bench.vm.run import run_in_guest

    argv = list(args.argv)
    if "--" in argv:
        # Options given after the profile (argparse's REMAINDER keeps them): parse those before `--`.
        split = argv.index("--")
        late = argparse.ArgumentParser(prog="bench vm run", add_help=False)
        late.add_argument("--results", type=Path, default=args.results)
        late.add_argument("--timeout", type=float, default=args.timeout)
        late.add_argument("--libvirt-uri", default=args.libvirt_uri)
        late.parse_args(argv[:split], namespace=args)
        argv = argv[split + 1 :]
    if not argv:
        raise UsageError("give the command after --, e.g. bench vm run seabios -- python -V")
    results = args.results or Path(tempfile.mkdtemp(prefix="bench-vm-run-"))
    result = run_in_guest(
        args.profile, argv, results_dir=results, timeout_s=args.timeout, uri=args.libvirt_uri
    )
    print(json.dumps(result.as_record(), indent=2))
    if result.stdout_log.is_file():
        sys.stdout.write(result.stdout_log.read_text(errors="replace"))
    if result.stderr_log.is_file():
        sys.stderr.write(result.stderr_log.read_text(errors="replace"))
    if result.exit_code is not None:
        return result.exit_code
    print(f"bench vm run: {result.reason}", file=sys.stderr)
    return 3


def _build(args: argparse.Namespace) -> int:
    from bench.vm.guest import ensure_guest

    guest = ensure_guest(log=lambda message: print(message, file=sys.stderr))
    for key, value in guest.as_record().items():
        print(f"{key}: {value}")
    return 0


def _accel(args: argparse.Namespace) -> int:
    from bench.vm.accel import probe_kvm
    from bench.vm.connection import connect
    from bench.vm.guest import ensure_guest

    guest = ensure_guest(log=lambda message: print(message, file=sys.stderr))
    hv = connect(args.libvirt_uri)
    probe = probe_kvm(hv, guest, refresh=args.refresh)
    print(f"uri: {probe.uri}\nkvm usable: {probe.kvm_usable}\nreason: {probe.reason}")
    print(f"host boot: {probe.boot_id} (result cached until the host reboots; --refresh probes again)")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from bench.vm.profiles import load_profiles

    for profile in load_profiles().values():
        reason = profile.skip_reason() if profile.is_vm else None
        status = f"skipped: {reason}" if reason else "ok"
        print(f"{profile.name:18} {profile.firmware:9} {status:10}  {profile.description}")
    return 0
