"""Regenerate the documents that publish measured figures from their committed raw data,
measuring nothing:

    python bench/report.py                    # bench/RESULTS.md (and the plot) from bench/data/
    python bench/report.py results --dir DIR  # DIR/RESULTS.md from DIR/data/
    python bench/report.py reliability        # docs/reliability.md's table from docs/data/
    python bench/report.py reliability --records drills.jsonl --command "pytest …"
                                              # first turn a drill run's records into the data

``make bench-report``, ``make reliability-report`` and ``make reliability`` call it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]  # run as a script: bench/ is a package

from bench import drills, machines, results  # noqa: E402

RELIABILITY_DATA = REPO / "docs" / "data" / "reliability.json"
RELIABILITY_DOC = REPO / "docs" / "reliability.md"


def reliability(args: argparse.Namespace) -> Path:
    if args.records is not None:
        records = [json.loads(line) for line in args.records.read_text().splitlines() if line]
        meta = machines.describe("-m pytest", args.command.split(), started=time.monotonic(),
                                 versions={})
        meta["argv"] = ["pytest", *args.command.split()]
        args.data.parent.mkdir(parents=True, exist_ok=True)
        args.data.write_text(results.dumps(drills.collect(records, meta)))
    data = json.loads(args.data.read_text())
    args.doc.write_text(drills.replace(args.doc.read_text(), data, where=str(args.doc)))
    return Path(args.doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="doc_kind")
    res = sub.add_parser("results", help="bench/RESULTS.md from bench/data/ (the default)")
    res.add_argument("--dir", type=Path, default=results.BENCH)
    res.add_argument("--no-plot", action="store_true", help="leave convergence.png as it is")
    rel = sub.add_parser("reliability", help="docs/reliability.md's table from its data")
    rel.add_argument("--data", type=Path, default=RELIABILITY_DATA)
    rel.add_argument("--doc", type=Path, default=RELIABILITY_DOC)
    rel.add_argument("--records", type=Path, default=None,
                     help="JSON lines written by a drill run (RECONCILE_LAB_DRILL_RECORD): "
                     "save them as --data first")
    rel.add_argument("--command", default="", help="the drills' pytest arguments, for the record")
    args = parser.parse_args(argv)
    if args.doc_kind == "reliability":
        print(f"wrote {reliability(args)}")
    else:
        directory = getattr(args, "dir", results.BENCH)
        print(f"wrote {results.regenerate(directory, plot=not getattr(args, 'no_plot', False))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
