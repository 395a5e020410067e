"""RESULTS.md: each benchmark owns one `## ` section and replaces it when it runs again.

The file lives in bench/ unless a benchmark is told another directory (`--write DIR`, or
`make bench BENCH_DIR=DIR`), so that a trial run leaves the committed results alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def add_write_option(parser: argparse.ArgumentParser, what: str = "RESULTS.md") -> None:
    parser.add_argument(
        "--write",
        nargs="?",
        type=Path,
        const=BENCH,
        default=None,
        metavar="DIR",
        help=f"update {what} in DIR (default: bench/)",
    )


def write_section(section: str, directory: Path = BENCH) -> None:
    results = directory / "RESULTS.md"
    text = results.read_text() if results.exists() else "# Benchmark results\n\n"
    head = section.splitlines()[0]
    if head in text:
        start = text.index(head)
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    directory.mkdir(parents=True, exist_ok=True)
    results.write_text(text)
