"""A participant's progress through the exercises: hints shown, checks run, time spent.

Each exercise has a :class:`Record`. The clock starts at the first hint, check, solve or reset
and stops at the first check that passes; ``solve`` passing counts as done, and says so.
Records go to and from plain JSON-able dicts; ``command`` keeps them in the kit's state
directory.

Purely data: no I/O, no clock (every function is given ``now``, seconds since the epoch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reconcile_lab.workshop import catalog

Progress = Mapping[str, "Record"]  # by exercise number


class Record(NamedTuple):
    hints: int = 0  # how many hints were shown
    checks: int = 0  # how many checks ran
    started: float | None = None  # first hint, check, solve or reset
    passed: float | None = None  # first check that passed
    solved: bool = False  # the first pass came after `exercise solve`

    @property
    def done(self) -> bool:
        return self.passed is not None

    @property
    def attempted(self) -> bool:
        return self.checks > 0 and not self.done

    def seconds(self, now: float) -> float | None:
        """Time spent: to the first pass, or until now while not done."""
        if self.started is None:
            return None
        return (self.passed if self.passed is not None else now) - self.started

    def word(self) -> str:
        if self.done:
            return "done (solved)" if self.solved else "done"
        if self.attempted:
            return "attempted"
        return "started" if self.started is not None else "not started"


def _get(progress: Progress, number: str) -> Record:
    return progress.get(number, Record())


def _with(progress: Progress, number: str, record: Record) -> dict[str, Record]:
    return {**progress, number: record}


def _touched(record: Record, now: float) -> Record:
    return record if record.started is not None else record._replace(started=now)


def touched(progress: Progress, number: str, now: float) -> dict[str, Record]:
    """After a reset: the clock runs from now unless it already does."""
    return _with(progress, number, _touched(_get(progress, number), now))


def next_hint(progress: Progress, entry: catalog.Entry,
              now: float) -> tuple[dict[str, Record], int | None]:
    """One more hint: (progress, its index), or (progress, None) after the last."""
    record = _touched(_get(progress, entry.number), now)
    if record.hints >= len(entry.hints):
        return _with(progress, entry.number, record), None
    return _with(progress, entry.number, record._replace(hints=record.hints + 1)), record.hints


def checked(progress: Progress, number: str, passed: bool, now: float, *,
            by_solve: bool = False) -> dict[str, Record]:
    record = _touched(_get(progress, number), now)
    record = record._replace(checks=record.checks + 1)
    if passed and not record.done:
        record = record._replace(passed=now, solved=by_solve)
    return _with(progress, number, record)


# --- JSON -------------------------------------------------------------------------------------


def to_json(progress: Progress) -> dict[str, Any]:
    return {"version": 1, "exercises": {n: r._asdict() for n, r in sorted(progress.items())}}


def from_json(data: Any) -> dict[str, Record]:
    """Records from ``to_json``'s output; fields it does not know are ignored."""
    if not isinstance(data, dict) or not isinstance(data.get("exercises"), dict):
        raise ValueError("not a progress file (no 'exercises' object)")
    fields = set(Record._fields)
    return {str(n): Record(**{k: v for k, v in r.items() if k in fields})
            for n, r in data["exercises"].items() if isinstance(r, dict)}


# --- text -------------------------------------------------------------------------------------


def format_minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def format_status(progress: Progress, now: float,
                  entries: tuple[catalog.Entry, ...] = catalog.ENTRIES) -> str:
    rows = [("NN", "title", "status", "hints", "time spent")]
    for e in entries:
        r = _get(progress, e.number)
        spent = format_minutes(r.seconds(now))
        rows.append((e.number, e.title, r.word(), f"{r.hints}/{len(e.hints)}",
                     spent if r.done or r.started is None else f"{spent} so far"))
    done = sum(_get(progress, e.number).done for e in entries)
    return _table(rows) + f"\n\n{done} of {len(entries)} done"


def format_list(progress: Progress, entries: tuple[catalog.Entry, ...] = catalog.ENTRIES) -> str:
    rows = [("NN", "title", "difficulty", "minutes", "status")]
    rows += [(e.number, e.title, e.difficulty.value, str(e.minutes),
              _get(progress, e.number).word()) for e in entries]
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in rows)
