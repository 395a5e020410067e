"""argparse types the commands share: a value refused here is refused with what was wrong,
before anything runs.

Purely data: no I/O.
"""

from __future__ import annotations

import argparse


def seconds(text: str) -> float:
    """A number of seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


MAX_RATE = 50.0  # requests a second: load stays bounded on a laptop's loopback


def rate(text: str) -> float:
    """Requests a second, more than 0 and at most MAX_RATE."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of requests") from None
    if not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"{text!r}: more than 0 and at most {MAX_RATE:g} "
                                         "requests a second (each forks a process in the app)")
    return value
