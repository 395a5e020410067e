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
