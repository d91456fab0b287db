"""The `bench` command: one entry point; each sub-command lives in the package that owns it.

Every sub-command module provides `add_arguments(parser)` and `run(args) -> int` and keeps heavy imports
inside `run`, so `bench --help` and `bench serve` start fast. Errors are raised as `bench.errors.BenchError`
and turned into one message and an exit code here, nowhere else. A command with sub-commands of its own
(`bench vm boot`) sets `_name` on its sub-parsers so messages name the whole command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bench.errors import BenchError

__all__ = ["COMMANDS", "build_parser", "main"]

# sub-command -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("topology.cli", "start one target (grpc, rest or soap) or a process of the split topology "
              "(books, circulation, gateway) and print a READY line"),
    "run": ("bench.run.cli", "run the benchmark matrix and write results/<run_id>/ with report.html"),
    "verify": ("bench.verify.cli", "run the conformance suite against built-in or running implementations"),
    "report": ("bench.report.cli", "rebuild tables and report.html of a run from its raw files"),
    "compare": ("bench.analysis.cli", "compare two runs cell by cell (exit 1 on a significant regression)"),
    "power": ("bench.analysis.power.cli",
              "simulate the verdict rule: power to detect a difference, rate of false verdicts"),
    "calibrate": ("bench.calibrate.cli",
                  "compare locust's request rate with wrk/h2load on the same target and CPUs"),
    "micro": ("bench.micro.cli", "summaries of the pytest-benchmark suite (bench micro summary …)"),
    "vm": ("bench.vm.cli", "libvirt guests: profiles, domain XML, boot timing, commands in a guest"),
    "codegen": ("bench.codegen.cli", "regenerate (or --check) the gRPC stubs and the WSDL"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="gRPC / REST / SOAP benchmark harness")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run, _name=f"bench {name}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except BenchError as exc:
        # `_name` names the (nested) sub-command that failed, e.g. "bench vm boot".
        print(f"{args._name}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `bench … | head`: the reader left; say nothing more (stdout is gone) and exit like a piped tool.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
