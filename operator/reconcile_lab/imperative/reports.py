"""What the Docker twin reports: what it observed, what each step came to, what a whole run did.

Plain values passed from ``engine`` (the adapter) and ``applying`` (the run) to the command line,
which prints and counts them.

Purely data: no docker SDK, no subprocess, no logging, no metrics, no clock.
"""

from __future__ import annotations

from typing import NamedTuple

from reconcile_lab.imperative import containers, steps


class Observation(NamedTuple):
    """What an app owns in Docker right now."""

    containers: list[containers.Observed]
    network_exists: bool  # a network NAME labelled for the app
    network_foreign: bool  # a network NAME exists but belongs to someone else


class Outcome(NamedTuple):
    step: steps.Step
    ok: bool
    seconds: float = 0.0
    problems: tuple[tuple[str, str], ...] = ()  # (container, why) for each that did not make it
    skipped: bool = False

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.problems)

    @property
    def detail(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in self.problems)


class Report(NamedTuple):
    """What one ``apply`` or ``delete`` did, and where it left the app."""

    app: str
    steps: list[steps.Step]
    outcomes: list[Outcome]
    desired: int
    ready: int
    containers: list[containers.Observed]  # as observed after the run
    remaining: list[steps.Step]  # what a fresh plan would still do
    seconds: float
    conflict: str = ""
    dry_run: bool = False

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def problems(self) -> dict[str, str]:
        """The first reason each container did not make it (later steps often just echo it)."""
        first: dict[str, str] = {}
        for outcome in self.failures:
            for name, why in outcome.problems:
                first.setdefault(name, why)
        return first

    @property
    def failed(self) -> list[str]:
        return sorted(self.problems)

    @property
    def converged(self) -> bool:
        if self.dry_run:
            return not self.steps
        return (not self.conflict and not self.failures and not steps.changes(self.remaining)
                and self.ready == self.desired)

