"""Tail a guest's serial log while it boots, stamping every line with the host's monotonic clock."""

from __future__ import annotations

import codecs
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BootPhases", "SerialLine", "SerialTail", "parse_phases"]

READY_MARKER = "BENCH-READY"
INIT_MARKER = "BENCH-INIT"
FAIL_MARKER = "BENCH-FAIL"

# The first thing the kernel prints, whichever entry path ran: the real-mode setup code ("Probing EDD"),
# the x86 decompressor, the EFI stub (OVMF), or the first printk line.
# "Probing EDD" can appear with every letter doubled when the firmware echoes BIOS video output to the
# same serial port (SeaBIOS with sgabios, qboot).
_KERNEL_START = re.compile(
    r"P+r+o+b+i+n+g+\s+E+D+D+|Decompressing Linux|EFI stub:|early console in|Linux version \d"
    r"|^\[\s*\d+\.\d+\]"
)
# The decompressed kernel's first printk line; the guest's uptime clock starts about here.
_KERNEL_MAIN = re.compile(r"Linux version \d")
_UPTIME = re.compile(r"uptime=([0-9.]+)")
_POWER_DOWN = re.compile(r"reboot: (Power down|Restarting system)")
# Terminal control sequences (firmware consoles clear the screen); stripped only for matching.
_ANSI = re.compile(r"\x1b(\[[0-9;?=]*[A-Za-z]|c)")


@dataclass(frozen=True)
class SerialLine:
    t: float  # time.monotonic() when the line's first byte was read on the host
    text: str
    # (character offset, time) where a later read continued this line; a firmware and the kernel can
    # write to one line seconds apart (OVMF clears the screen, then the EFI stub prints).
    marks: tuple[tuple[int, float], ...] = ()

    def time_at(self, offset: int) -> float:
        t = self.t
        for mark_offset, mark_t in self.marks:
            if mark_offset > offset:
                break
            t = mark_t
        return t


class SerialTail:
    """Poll `path` in a thread; a line's timestamp is when its first byte appeared (resolution ~poll_s)."""

    def __init__(self, path: Path, *, poll_s: float = 0.002) -> None:
        self.path = path
        self.poll_s = poll_s
        self._lines: list[SerialLine] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name=f"serial-tail:{path.name}", daemon=True)
        self.first_byte_t: float | None = None

    def __enter__(self) -> SerialTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(timeout=2)

    def _run(self) -> None:
        handle = None
        partial = ""
        partial_t = 0.0
        marks: list[tuple[int, float]] = []
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                stopping = self._stop.is_set()
                if handle is None:
                    try:
                        handle = self.path.open("rb")
                    except FileNotFoundError:
                        handle = None
                chunk = decoder.decode(handle.read()) if handle is not None else ""
                now = time.monotonic()
                if chunk:
                    if self.first_byte_t is None:
                        self.first_byte_t = now
                    if partial:
                        marks.append((len(partial), now))
                    else:
                        partial_t = now
                    *complete, rest = (partial + chunk).split("\n")
                    new = []
                    for text in complete:
                        new.append(SerialLine(partial_t, text.rstrip("\r"), tuple(marks)))
                        partial_t, marks = now, []
                    partial = rest
                    if new:
                        with self._changed:
                            self._lines.extend(new)
                            self._changed.notify_all()
                if stopping:
                    break
                time.sleep(self.poll_s)
        finally:
            if handle is not None:
                handle.close()
            if partial:
                with self._changed:
                    self._lines.append(SerialLine(partial_t, partial.rstrip("\r"), tuple(marks)))
                    self._changed.notify_all()

    def lines(self) -> list[SerialLine]:
        with self._lock:
            return list(self._lines)

    def wait_for(self, needle: str, *, timeout_s: float) -> SerialLine | None:
        """Block until a line containing `needle` appears, or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if needle in line.text:
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(timeout=min(remaining, 0.05))


@dataclass(frozen=True)
class BootPhases:
    """Host-side times (seconds since the domain was started) of each boot milestone; None = not seen."""

    firmware_s: float | None  # first byte the firmware printed (None: this firmware prints nothing)
    kernel_s: float | None  # first kernel output (setup code / EFI stub), before decompression
    kernel_main_s: float | None  # "Linux version": the decompressed kernel runs (uptime ~0)
    init_s: float | None  # initramfs init started (BENCH-INIT)
    ready_s: float | None  # mounts done, ready to run work (BENCH-READY)
    guest_uptime_ready_s: float | None  # the guest's own /proc/uptime at BENCH-READY
    failure: str | None  # text of a BENCH-FAIL line, if any

    def as_record(self) -> dict[str, float | str | None]:
        return {
            "firmware_s": self.firmware_s,
            "kernel_s": self.kernel_s,
            "kernel_main_s": self.kernel_main_s,
            "init_s": self.init_s,
            "ready_s": self.ready_s,
            "guest_uptime_ready_s": self.guest_uptime_ready_s,
            "failure": self.failure,
        }


def parse_phases(lines: list[SerialLine], start_t: float) -> BootPhases:
    """Split a boot into phases from timestamped serial lines; `start_t` is when createXML returned."""
    firmware_t = kernel_t = kernel_main_t = init_t = ready_t = None
    uptime = None
    failure = None
    for line in lines:
        text = _ANSI.sub("", line.text)
        if kernel_t is None:
            match = _KERNEL_START.search(line.text)
            before = line.text[: match.start()] if match else line.text
            if firmware_t is None and before.strip():
                firmware_t = line.t  # anything printed before the kernel's first words is firmware
            if match:
                kernel_t = line.time_at(match.start())
        if kernel_main_t is None:
            main = _KERNEL_MAIN.search(line.text)
            if main:
                kernel_main_t = line.time_at(main.start())
        if init_t is None and INIT_MARKER in text:
            init_t = line.t
        if ready_t is None and READY_MARKER in text:
            ready_t = line.t
            match = _UPTIME.search(text)
            uptime = float(match.group(1)) if match else None
        if failure is None and FAIL_MARKER in text:
            failure = text.split(FAIL_MARKER, 1)[1].strip() or "init failed"

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - start_t, 4)

    return BootPhases(
        firmware_s=rel(firmware_t),
        kernel_s=rel(kernel_t),
        kernel_main_s=rel(kernel_main_t),
        init_s=rel(init_t),
        ready_s=rel(ready_t),
        guest_uptime_ready_s=uptime,
        failure=failure,
    )


def power_down_t(lines: list[SerialLine]) -> float | None:
    """Host time the guest kernel announced power-off/reset (its last words on the console)."""
    for line in reversed(lines):
        if _POWER_DOWN.search(line.text):
            return line.t
    return None
