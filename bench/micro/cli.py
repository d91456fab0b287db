"""`bench micro summary OUT.json`: adapters against bare stacks from a `pytest --benchmark-json` file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="micro_command", required=True, metavar="MICRO_COMMAND")
    summary = sub.add_parser(
        "summary", help="adapter vs bare-stack medians and the cost per streamed item, from a JSON file"
    )
    summary.add_argument("json_file", type=Path, help="output of pytest --benchmark-only --benchmark-json")
    summary.set_defaults(_name="bench micro summary")


def run(args: argparse.Namespace) -> int:
    from bench.micro.summary import print_summary

    try:
        data = json.loads(args.json_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{args.json_file}: not a readable pytest-benchmark JSON file ({exc})") from exc
    print_summary(data)
    return 0
