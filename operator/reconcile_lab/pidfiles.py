"""Pid files that say which process they mean, not just a number.

A bare pid outlives its process: after a crash or a reboot the number is handed to someone else,
and signalling it hits an unrelated program. So a pid file here holds the pid *and* the process's
start time (field 22 of ``/proc/PID/stat``, in clock ticks since boot); a process is only taken
for the recorded one when both match and its command line is the expected one.

Reads and writes only the pid file and ``/proc``; never sends a signal (the callers decide).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

# Whether a command line (argv, as /proc/PID/cmdline holds it) is the expected program.
Matcher = Callable[[Sequence[str]], bool]


class Record(NamedTuple):
    """What a pid file says: the pid and, when it was written by this kit, the start time."""

    pid: int
    start: int | None  # None: a file in the older, pid-only format


def parse(text: str) -> Record | None:
    """``PID`` or ``PID START``; None for anything else."""
    parts = text.split()
    try:
        if len(parts) == 1:
            return Record(int(parts[0]), None)
        if len(parts) == 2:
            return Record(int(parts[0]), int(parts[1]))
    except ValueError:
        return None
    return None


def format_record(record: Record) -> str:
    return f"{record.pid}\n" if record.start is None else f"{record.pid} {record.start}\n"


def start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def record_of(pid: int) -> Record:
    """The record to write for a process that was just started."""
    return Record(pid, start_time(pid))


def write(path: Path, pid: int) -> Record:
    record = record_of(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_record(record))
    return record


def read(path: Path) -> Record | None:
    try:
        return parse(path.read_text())
    except OSError:
        return None


def why_not(record: Record, matches: Matcher) -> str:
    """Why the process ``record`` names is not the expected one; "" when it is."""
    argv = cmdline(record.pid)
    if argv is None:
        return f"no process has pid {record.pid} any more"
    if not argv:
        return f"pid {record.pid} is a zombie or a kernel thread"
    if record.start is not None and start_time(record.pid) != record.start:
        return (f"pid {record.pid} was reused: it now belongs to a process started later "
                f"({' '.join(argv)[:120]})")
    if not matches(argv):
        return f"pid {record.pid} is now another program ({' '.join(argv)[:120]})"
    return ""


def alive(path: Path, matches: Matcher) -> Record | None:
    """The record in ``path`` when it still names a live, matching process."""
    record = read(path)
    if record is None or why_not(record, matches):
        return None
    return record
