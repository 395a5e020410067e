"""Convergence throughput, peers, latency at scale and write efficiency, on the embedded kwok
cluster, every comparison measured in the same run.

For each size N and repeat, each contender gets a fresh kwok cluster (same binaries, same
settings) and converges N apps from nothing:

- ``raw``: a tight aiohttp loop POSTing the operator's own Deployment+Service pairs, as many
  requests in flight as the operator has workers: the physical-limit proxy;
- ``operator``: reconcile-lab's operator; the load generator POSTs N WebApps the same way;
- ``naive-kopf``: ``reconcile_lab.declarative.naive``, an ``@kopf.on.create`` operator with defaults;
- ``sample-controller``: ``k8s.io/sample-controller`` (Foo → Deployment only), built from the Go
  module proxy into the cache.

The harness only watches (one watch per resource, no polling) and timestamps when each child
appears and when each app is ready. It scrapes ``apiserver_request_total`` before and after
(``kubectl get --raw /metrics``), the operator's ``reconcile_lab_writes_total``, and the
controller's RSS and CPU time from /proc. At the largest N the operator run goes on: idle writes,
then spec-change and drift-repair latencies with the N WebApps present.

    make bench                                   # everything RESULTS.md publishes
    python bench/convergence.py --sizes 20 --repeats 1 --rounds 10 --idle 5   # a smoke run

With ``--write [DIR]`` the raw results go to DIR/data/convergence.json (with the commit, date,
machine and command line) and DIR/RESULTS.md is regenerated from DIR/data/ (``report.py``).
The runners live in ``measuring.py``, ``contenders.py`` and ``watching.py``; the figures in
``summaries.py``, ``targets.py`` and ``sections.py``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]  # run as a script: bench/ is a package

from bench import contenders, machines, measuring, results, sections  # noqa: E402
from bench.probing import say  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,1000",
                        help="comma-separated N (default: 100,500,1000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per size")
    parser.add_argument("--largest-repeats", type=int, default=None,
                        help="repeats at the largest size (default: --repeats)")
    parser.add_argument("--contenders", default=",".join(contenders.CONTENDERS))
    parser.add_argument("--rounds", type=int, default=200,
                        help="latency rounds at the largest N (each: 3 events)")
    parser.add_argument("--idle", type=float, default=60, help="idle window, seconds")
    parser.add_argument("--settle", type=float, default=3,
                        help="seconds after convergence before the write count is taken")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the operator while it converges the largest N")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    results.add_write_option(parser)
    args = parser.parse_args()

    os.environ.setdefault("RECONCILE_LAB_STATE", tempfile.mkdtemp(prefix="bench-state-"))
    from reconcile_lab.cluster import kwok

    # SIGTERM unwinds like Ctrl-C: every run's `finally` stops its controller and its cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    say(f"state in {os.environ['RECONCILE_LAB_STATE']}")
    kwok.up(progress=say, nodes="kwok")  # builds what is missing, once
    kwok.down(progress=say)
    sizes = [int(s) for s in args.sizes.split(",")]
    chosen = [c for c in args.contenders.split(",") if c]
    logdir = Path(os.environ["RECONCILE_LAB_STATE"]) / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    if "sample-controller" in chosen:  # built once, before anything is timed
        contenders.sample_controller_binary()
        contenders.sample_controller_crd()
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in sizes:
        repeats = args.largest_repeats if n == max(sizes) and args.largest_repeats else \
            args.repeats
        for r in range(repeats):
            # Rotate the order, so that no contender always runs on a warmer (or busier) machine.
            order = chosen[r % len(chosen):] + chosen[:r % len(chosen)]
            for contender in order:
                extras = n == max(sizes) and r == 0
                try:
                    runs.append(measuring.run_one(contender, n, repeat=r, logdir=logdir,
                                                  extras=extras, args=args))
                except TimeoutError as e:  # recorded, and the matrix goes on
                    say(f"{contender} N={n}: {e}")
                    runs.append({"contender": contender, "n": n, "repeat": r, "error": str(e)})
    say(f"done in {(time.monotonic() - started) / 60:.1f} min; logs in {logdir}")

    meta = machines.describe("bench/convergence.py", sys.argv[1:], started=started,
                             versions=_versions())
    data = {"meta": meta, "concurrency": measuring.CONCURRENCY, "runs": runs}
    if args.json:
        args.json.write_text(results.dumps(data))
    print(sections.convergence(data))
    if args.write:
        results.save(args.write, "convergence", data)
        results.regenerate(args.write)
    return 0


def _versions() -> dict[str, str]:
    from importlib import metadata

    import kubernetes

    from reconcile_lab.cluster import versions

    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                        check=False).stdout.strip()
    return {"kubernetes": versions.KUBERNETES, "etcd": versions.ETCD, "kwok": versions.KWOK,
            "kopf": metadata.version("kopf"), "kubernetes-client": kubernetes.__version__,
            "sample-controller": contenders.SAMPLE_VERSION, "go": go}


if __name__ == "__main__":
    sys.exit(main())
