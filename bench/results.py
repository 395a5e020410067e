"""The raw data of each benchmark, saved beside the document made from it: ``DIR/data/NAME.json``
next to ``DIR/RESULTS.md`` (DIR is bench/ unless ``--write DIR`` or ``make bench BENCH_DIR=DIR``
says otherwise, so that a trial run leaves the committed results alone).

Reads and writes those files; the Markdown comes from ``sections.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
NAMES = ("convergence", "drift_repair", "docker_twin")


def add_write_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write", nargs="?", type=Path, const=BENCH, default=None, metavar="DIR",
        help="save the raw data in DIR/data/ and regenerate DIR/RESULTS.md (default: bench/)")


def data_file(directory: Path, name: str) -> Path:
    return directory / "data" / f"{name}.json"


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def save(directory: Path, name: str, data: Any) -> Path:
    path = data_file(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data))
    return path


def load_all(directory: Path) -> dict[str, Any]:
    """Every benchmark's data in DIR/data/ (None for one that has none)."""
    return {name: json.loads(p.read_text()) if (p := data_file(directory, name)).is_file()
            else None for name in NAMES}


def regenerate(directory: Path, *, plot: bool = True) -> Path:
    """DIR/RESULTS.md (and the plot) from DIR/data/, measuring nothing."""
    from bench import sections

    data = load_all(directory)
    out = directory / "RESULTS.md"
    out.write_text(sections.document(data))
    if plot and data["convergence"] is not None:
        from bench import plotting

        plotting.plot(data["convergence"], directory / "convergence.png")
    return out
