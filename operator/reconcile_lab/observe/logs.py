"""structlog set-up, in one place: JSON for machines (in-cluster), readable for terminals."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    """JSON when asked, or when stderr is not a terminal (a pod's log, CI)."""
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer] if json
        else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(**bound: Any) -> Any:
    """A logger bound to the given context (namespace, name, generation, engine…)."""
    return structlog.get_logger("reconcile-lab").bind(**bound)


# "Request attempt #3/9 failed; will retry: GET https://…/services?watch=true -> APIForbiddenError(…"
_RETRY = re.compile(r"Request attempt #\d+(?:/\d+)? failed; will retry: "
                    r"(?P<method>\S+) (?P<path>[^?\s]+)\S* -> (?P<error>\w+)")


class RepeatsMuted:
    """A logging filter for kopf's lines. kopf logs every failed attempt of a request at
    ERROR, and a watch that is refused starts again at attempt #1 each time the inactivity
    timeout ends it: a RoleBinding gone for a minute would write a line per watch every 20 s.
    Kept: the first line of a failure (the request's method and path, the error), then at
    most one every ``every`` seconds while it goes on, saying how many were left out; kopf's
    ``escalating`` line always. One per logging handler: it counts what it let through."""

    def __init__(self, every: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._shown: dict[tuple[str, str, str], tuple[float, int]] = {}  # when, left out since

    def __call__(self, record: logging.LogRecord) -> bool:
        found = _RETRY.match(record.getMessage())
        if found is None:
            return True
        key = (found["method"], found["path"], found["error"])
        now = self.clock()
        shown = self._shown.get(key)
        if shown is not None and now - shown[0] < self.every:
            self._shown[key] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg = f"{record.getMessage()} ({shown[1]} more like it left out)"
            record.args = None
        self._shown[key] = (now, 0)
        if len(self._shown) > 1000:  # bounded: the oldest failures go first
            del self._shown[next(iter(self._shown))]
        return True
