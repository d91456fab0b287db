"""Child processes that end with their parent: no orphaned target, cell or worker after a crash or SIGKILL.

The parent puts its pid in the environment of the child (`child_env`); the child calls `die_with_parent()`
first thing, which asks Linux to send it SIGTERM when the parent dies (PR_SET_PDEATHSIG). Done in the child,
not in a `preexec_fn`, so that spawning stays a plain fork+exec: gRPC's fork handlers, which run on a
Python-level fork in a process that has used gRPC, can break the child before it execs.
"""

from __future__ import annotations

import ctypes
import os
import signal

__all__ = ["PARENT_PID_ENV", "child_env", "die_with_parent"]

PARENT_PID_ENV = "LIBRARY_BENCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must not outlive this process."""
    return {**(os.environ if base is None else base), PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """If started by a harness process, receive SIGTERM when it dies (and at once if it already has)."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
