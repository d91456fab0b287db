"""The `bench` command's one convention: sub-commands by name; typed errors as one message + exit code."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


def test_every_sub_command_module_has_the_two_functions() -> None:
    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(getattr(module, "add_arguments", None)), f"{name}: {module_name}.add_arguments"
        assert callable(getattr(module, "run", None)), f"{name}: {module_name}.run"
        assert module_name.endswith(".cli"), f"{name}: sub-commands live in <package>/cli.py"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--protocols", "corba", "--dry-run"], "bench run: --protocols 'corba': choose from grpc"),
        (["report", "no-such-run"], "bench report: no run 'no-such-run' under"),
        (["compare", "no-such-a", "no-such-b"], "bench compare: no run 'no-such-a' under"),
        (["calibrate", "--protocols", "corba"], "bench calibrate: --protocols 'corba': choose from"),
        (["vm", "boot", "--repeats", "0"], "bench vm boot: --repeats must be at least 1"),
        (["micro", "summary", "/no/such.json"], "bench micro summary: /no/such.json: not a readable"),
    ],
)
def test_bad_input_is_one_message_naming_the_command_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if argv[0] in ("report", "compare"):
        argv = [*argv, "--results-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert "Traceback" not in err


def test_generated_contract_files_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "codegen", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_bench_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for name in COMMANDS:
        assert name in done.stdout
