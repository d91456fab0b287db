"""`bench power`: how often the verdict rule would be wrong, simulated through the rule itself.

bench power                          the built-in design (5 repetitions, 3 % spread, 24 comparisons)
bench power --run RUN_ID             the family, spread and background effects that run measured
bench power --cv 5 --repeats 4,5,8   what-if: another spread, other numbers of repetitions
"""

from __future__ import annotations

import argparse
import sys

from bench.options import add_results_dir

__all__ = ["add_arguments", "run"]


def _counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers separated by commas") from None
    if not values or any(v < 2 or v > 20 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each number of repetitions must be between 2 and 20")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--run", metavar="RUN_ID", help="take spread, family and background effects from a run"
    )
    add_results_dir(parser)
    parser.add_argument(
        "--headline",
        default="p50_1user",
        help="with --run: the metric whose spread to take (default p50_1user: the python engine's p50 at one "
        "user; p50_eq: the native engine's p50 at equal offered load)",
    )
    parser.add_argument(
        "--operation", default="GetBook", help="with --run: the operation of that metric (default GetBook)"
    )
    parser.add_argument(
        "--effect", type=float, default=10.0, metavar="PCT", help="true difference (default 10)"
    )
    parser.add_argument(
        "--cv",
        type=float,
        default=None,
        metavar="PCT",
        help="between-repetition spread of the metric, %% (default 3, or the run's)",
    )
    parser.add_argument(
        "--comparisons",
        type=int,
        default=None,
        metavar="N",
        help="comparisons in the family (default 24, or the run's)",
    )
    parser.add_argument(
        "--repeats",
        type=_counts,
        default=None,
        metavar="N,N,…",
        help="repetitions per arm to tabulate (default 3,4,5,6,8)",
    )
    parser.add_argument(
        "--simulations", type=int, default=1000, metavar="N", help="simulated runs per figure (default 1000)"
    )
    parser.add_argument("--format", choices=("table", "markdown"), default=None,
                        help="default: table on a terminal, markdown when piped")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench.analysis.power.simulation import Design, design_from_run, power_table
    from bench.errors import UsageError
    from bench.paths import run_dir

    design = Design()
    source = "built-in design"
    if args.run:
        try:
            directory = run_dir(args.run, args.results_dir)
            design = design_from_run(directory, headline=args.headline, operation=args.operation)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from exc
        source = f"run {directory.name} ({args.headline}, {args.operation})"
    if args.cv is not None:
        design = replace(design, cv_pct=args.cv)
    if args.comparisons is not None:
        design = replace(design, comparisons=args.comparisons)
    if args.simulations < 100:
        raise UsageError(f"--simulations {args.simulations}: at least 100 for a usable rate")
    repeats = args.repeats or [3, 4, 5, 6, 8]
    background = (
        ", ".join(f"{v:+.0f} %" for v in design.background_pct[:12])
        + (" …" if len(design.background_pct) > 12 else "")
        if design.background_pct
        else "none (every other comparison has no real difference)"
    )
    print(
        f"{source}: spread {design.cv_pct:.1f} % per repetition, {design.comparisons} comparisons + 1 A/A, "
        f"true difference {args.effect:+.0f} %, {args.simulations} simulated runs per figure\n"
        f"other comparisons' true differences: {background}",
        flush=True,
    )
    table = power_table(design, args.effect, repeats, runs=args.simulations)
    fmt = args.format or ("table" if sys.stdout.isatty() else "markdown")
    head = (
        "repetitions per arm",
        f"power at {args.effect:+.0f} %",
        "runs with a false verdict (no difference)",
    )
    rows = [(str(n), f"{p:.0%}", f"{f:.1%}") for n, p, f in table]
    if fmt == "markdown":
        print("\n| " + " | ".join(head) + " |\n|---:|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        from rich.console import Console
        from rich.table import Table

        out = Table(*head)
        for row in rows:
            out.add_row(*row)
        Console().print(out)
    return 0
