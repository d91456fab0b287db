"""Runs inside the guest (standard library only): executes the requested argv and records its status."""

# This file is executed by the host's Python *inside the guest* (chroot into the host root mounted over
# 9p), started by the initramfs init with `python -I -S`. It must not import anything outside the stdlib.

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    control = Path(request_path).parent
    started = _uptime()
    record: dict[str, object] = {"argv": request["argv"], "cwd": request["cwd"], "started_uptime": started}
    with (
        open(control / "stdout.log", "wb") as stdout,
        open(control / "stderr.log", "wb") as stderr,
    ):
        try:
            completed = subprocess.run(
                request["argv"],
                cwd=request["cwd"],
                env=request["env"],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                check=False,
            )
            exit_code = completed.returncode
        except OSError as exc:  # e.g. the program does not exist inside the guest
            stderr.write(f"bench guest: cannot run {request['argv'][0]!r}: {exc}\n".encode())
            record["error"] = str(exc)
            exit_code = 127
    record.update(exit_code=exit_code, ended_uptime=_uptime(), wall_s=_uptime() - started)
    tmp = control / "exit-status.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.rename(control / "exit-status.json")
    print(f"BENCH-COMMAND-DONE exit_code={exit_code}", flush=True)
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
