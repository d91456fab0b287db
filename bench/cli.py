"""The `bench` command: one entry point; each sub-command lives in the module that owns it.

A command module provides `add_arguments(parser)` and `run(args) -> int` and keeps heavy imports inside
`run`, so `bench --help` and `bench serve` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help[, add-arguments function, run function]); defaults: add_arguments, run
COMMANDS: dict[str, tuple[str, ...]] = {
    "serve": ("targets.serve", "start one target (grpc, rest or soap) and print a READY line"),
    "run": ("bench.run_cli", "run the benchmark matrix and write results/<run_id>/ with report.html"),
    "report": ("bench.report_cli", "rebuild tables and report.html of a run from its raw files",
               "add_report_arguments", "report"),
    "compare": ("bench.report_cli", "compare two runs cell by cell (exit 1 on a significant regression)",
                "add_compare_arguments", "compare"),
    "vm": ("bench.vm.cli", "libvirt guests: print domain XML, time boots"),
    "calibrate": ("bench.calibrate",
                  "compare locust's request rate with wrk/h2load on the same target and CPUs"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="gRPC / REST / SOAP benchmark harness")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text, *functions) in COMMANDS.items():
        add_name, run_name = functions or ("add_arguments", "run")
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        getattr(module, add_name)(command)
        command.set_defaults(_run=getattr(module, run_name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
