"""structlog set-up, in one place: JSON for machines (in-cluster), readable for terminals."""

from __future__ import annotations

import logging
import re
import sys
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


_RETRY = re.compile(r"Request attempt #(\d+)/\d+ failed; will retry: ")


def first_attempt_only(record: logging.LogRecord) -> bool:
    """A logging filter for kopf's lines: kopf logs every retry of a failing request at ERROR,
    so a watch refused for a minute (permissions revoked, the apiserver away) writes nine lines
    each time it tries. The first attempt and the last (``escalating``) are kept."""
    found = _RETRY.match(record.getMessage())
    return found is None or found.group(1) == "1"
