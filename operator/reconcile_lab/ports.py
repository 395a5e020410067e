"""The ports the kit's own servers listen on (on 127.0.0.1), and the variable that moves each.

A machine where 8000 or 9090 is taken sets the variable once, in the shell or in the
environment of whatever starts the kit; every command that starts one of these servers, or reads
from it, follows: the operator, the twin's ``--watch`` loop, Prometheus and the scrape config it
is given, the exercise checks.

Purely data: reads only the mapping it is given (``os.environ`` by default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple


class BadPort(ValueError):
    """A variable set to something that is not a port."""


class Port(NamedTuple):
    variable: str
    default: int
    serves: str  # what listens there, for --help and errors

    def get(self, env: Mapping[str, str] | None = None) -> int:
        raw = (os.environ if env is None else env).get(self.variable, "").strip()
        if not raw:
            return self.default
        if not raw.isdigit() or not 0 <= int(raw) <= 65535:
            raise BadPort(f"{self.variable}={raw!r} is not a port (0-65535) for {self.serves}. "
                          f"fix: `export {self.variable}=<free port>`, or `unset {self.variable}` "
                          f"for the default {self.default}")
        return int(raw)

    def help(self) -> str:
        return f"default {self.default}, or ${self.variable}"


OPERATOR_METRICS = Port("RECONCILE_LAB_METRICS_PORT", 8000, "the operator's /metrics")
OPERATOR_HEALTH = Port("RECONCILE_LAB_HEALTH_PORT", 8080, "the operator's /healthz")
TWIN_METRICS = Port("RECONCILE_LAB_TWIN_METRICS_PORT", 8001,
                    "the Docker twin's /metrics (with --watch)")
PROMETHEUS = Port("RECONCILE_LAB_PROMETHEUS_PORT", 9090, "Prometheus's web UI and API")
ALL = (OPERATOR_METRICS, OPERATOR_HEALTH, TWIN_METRICS, PROMETHEUS)


def url(port: Port, path: str = "", env: Mapping[str, str] | None = None) -> str:
    return f"http://127.0.0.1:{port.get(env)}{path}"
