"""What the fault proxy does with each connection, and the words of its control protocol.

Pure: no sockets, no asyncio. The proxy (``proxy.py``) asks :class:`Switchboard` what to do
when a connection arrives and when the mode changes, and does it.

Modes:

- ``pass``: every byte is forwarded untouched, both ways.
- ``cut``: every open connection is reset; new ones are reset as soon as they arrive (the
  client sees ``connection reset``: a partition, or an apiserver that went away).
- ``stall``: the connections open at that moment go silent, both ways, and stay open: a peer
  that vanished without a word (a NAT or load-balancer entry dropped, a half-dead host). Only
  a client-side timeout notices. Connections opened during the stall pass: the path works
  again, but the old connections do not know it.

``heal`` is ``pass``: stalled connections forward again what they held.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, NamedTuple


class Mode(enum.Enum):
    FORWARD = "pass"
    CUT = "cut"
    STALL = "stall"


# Control requests: one line each, answered with one line of JSON (the status).
COMMANDS = {"heal": Mode.FORWARD, "pass": Mode.FORWARD, "cut": Mode.CUT, "stall": Mode.STALL}
STATUS = "status"


class ControlError(ValueError):
    """A control request that is not one of :data:`COMMANDS` or ``status``."""


class Change(NamedTuple):
    """What the proxy must do after a mode change."""

    reset: frozenset[int]  # connections to reset now
    released: frozenset[int]  # stalled connections that may forward again


class Switchboard:
    """The mode and the connections it applies to, by id."""

    def __init__(self) -> None:
        self.mode = Mode.FORWARD
        self.open: set[int] = set()
        self.stalled: set[int] = set()
        self.reset_total = 0  # connections reset since the start (cut)
        self.refused_total = 0  # connections reset on arrival (during a cut)
        self.stalled_total = 0  # connections silenced since the start (stall)
        self.last_stall: float | None = None  # when the last stall began (the caller's clock)

    def admit(self, conn: int) -> bool:
        """A new connection: True to forward it, False to reset it at once."""
        if self.mode is Mode.CUT:
            self.refused_total += 1
            return False
        self.open.add(conn)
        return True

    def may_forward(self, conn: int) -> bool:
        return conn in self.open and conn not in self.stalled

    def closed(self, conn: int) -> None:
        self.open.discard(conn)
        self.stalled.discard(conn)

    def switch(self, mode: Mode, at: float | None = None) -> Change:
        """Change the mode at ``at`` (the caller's clock: the proxy's wall clock, so that a
        reader can compare it with an Event's time)."""
        if mode is Mode.STALL and self.mode is not Mode.STALL:
            self.last_stall = at
        self.mode = mode
        if mode is Mode.CUT:
            reset = frozenset(self.open)
            self.reset_total += len(reset)
            self.open.clear()
            self.stalled.clear()
            return Change(reset, frozenset())
        if mode is Mode.STALL:
            self.stalled_total += len(self.open - self.stalled)
            self.stalled |= self.open
            return Change(frozenset(), frozenset())
        released = frozenset(self.stalled)
        self.stalled.clear()
        return Change(frozenset(), released)

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "open": len(self.open), "stalled": len(self.stalled),
                "reset_total": self.reset_total, "refused_total": self.refused_total,
                "stalled_total": self.stalled_total, "last_stall": self.last_stall}


def parse_request(line: str) -> Mode | None:
    """A control line → the mode to switch to, or None for ``status``."""
    word = line.strip().lower()
    if word == STATUS:
        return None
    if word not in COMMANDS:
        raise ControlError(f"unknown fault command {word!r}; one of: "
                           f"{', '.join([*COMMANDS, STATUS])}")
    return COMMANDS[word]


def format_reply(status: Mapping[str, Any]) -> str:
    return json.dumps(dict(status), sort_keys=True) + "\n"


def format_status(status: Mapping[str, Any]) -> str:
    """One line for a person: ``stall: 3 open, 3 stalled; 0 reset, 0 refused, 3 stalled since
    start``."""
    return (f"{status['mode']}: {status['open']} open, {status['stalled']} stalled; "
            f"{status['reset_total']} reset, {status['refused_total']} refused, "
            f"{status.get('stalled_total', 0)} stalled since start")
