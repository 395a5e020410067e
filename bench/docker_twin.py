"""The Docker twin's speed: containers converged per second, against a raw docker-py loop.

Each repeat, in alternating order: ``reconcile-lab docker apply`` of one WebApp with N replicas
(as a person would run it: a fresh process), and a raw docker-py loop that creates and starts
the same N containers, with the same options, one at a time (the twin's own concurrency: it is
a script that does one step after another). Everything is removed after each run.

    make bench                           # or: python bench/docker_twin.py --replicas 24 --repeats 3

Writes a Markdown section to stdout and, with --write [DIR], into RESULTS.md there (default: bench/).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results import add_write_option, write_section  # bench/, next to this script

REPO = Path(__file__).resolve().parents[1]
IMAGE = "reconcile-lab/hello:v1"
say = lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True)  # noqa: E731


def twin(name: str, replicas: int, work: Path) -> dict[str, float]:
    """`reconcile-lab docker apply` in a fresh process; the wall time, and the time the engine
    itself reports (from its metrics file: without the Python start-up)."""
    spec = work / f"{name}.yaml"
    spec.write_text(f"apiVersion: reconcile-lab.dev/v1alpha1\nkind: WebApp\nmetadata:\n"
                    f"  name: {name}\nspec:\n  image: {IMAGE}\n  replicas: {replicas}\n")
    metrics = work / f"{name}.prom"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "reconcile_lab", "docker", "apply", "-f", str(spec),
                    "--metrics-file", str(metrics), "--log-format", "json"], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ,
                                                   "PYTHONPATH": str(REPO / "operator")})
    wall = time.monotonic() - started
    engine = 0.0
    for line in metrics.read_text().splitlines():
        if line.startswith("reconcile_lab_time_to_converge_seconds_sum") and 'docker' in line:
            engine = float(line.split()[-1])
    return {"wall_s": wall, "engine_s": engine}


def raw(client: Any, name: str, replicas: int) -> dict[str, float]:
    """create+start with the twin's options (network with an alias, loopback port, limits,
    security options), one after another."""
    from reconcile_lab import parsing
    from reconcile_lab import spec as specs
    from reconcile_lab.imperative import containers

    wanted = parsing.parse_spec({"image": IMAGE, "replicas": replicas}, name=name)
    app = specs.WebApp(name=name, namespace=None, spec=wanted)
    started = time.monotonic()
    client.networks.create(name, driver="bridge", labels={containers.LABEL_APP: name})
    for want in containers.desired(app):
        container = client.containers.create(
            want.image, detach=True, name=want.name, labels=want.labels,
            ports={f"{want.port}/tcp": (containers.LOOPBACK, None)}, user=containers.USER, read_only=True,
            cap_drop=[containers.CAP_DROP], security_opt=[containers.SECURITY_OPT],
            nano_cpus=want.nano_cpus, mem_limit=want.memory, environment=dict(want.env),
            healthcheck={"test": ["NONE"]}, network=want.network,
            networking_config={want.network: client.api.create_endpoint_config(
                aliases=[want.app])})
        container.start()
    return {"wall_s": time.monotonic() - started}


def clean(client: Any, name: str) -> None:
    from reconcile_lab.imperative import containers

    for c in client.containers.list(all=True, filters={"label": f"{containers.LABEL_APP}={name}"}):
        c.remove(force=True)
    for n in client.networks.list(names=[name]):
        n.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    add_write_option(parser)
    args = parser.parse_args()
    sys.path[:0] = [str(REPO / "operator"), str(REPO)]
    import docker

    from reconcile_lab.cluster import dockerd

    dockerd.ensure(progress=say)
    client = docker.from_env(timeout=120)
    client.images.get(IMAGE)  # fails loudly: build it with `make image`
    work = Path(tempfile.mkdtemp(prefix="bench-twin-"))
    results: dict[str, list[dict[str, float]]] = {"twin": [], "raw": []}
    for r in range(args.repeats):
        order = ("twin", "raw") if r % 2 == 0 else ("raw", "twin")
        for who in order:
            name = f"bench-{who}-{os.getpid()}-{r}"
            try:
                results[who].append(twin(name, args.replicas, work) if who == "twin"
                                    else raw(client, name, args.replicas))
            finally:
                clean(client, name)
            say(f"{who} run {r + 1}: {results[who][-1]}")

    n = args.replicas
    twin_wall = statistics.median(x["wall_s"] for x in results["twin"])
    twin_engine = statistics.median(x["engine_s"] for x in results["twin"])
    raw_wall = statistics.median(x["wall_s"] for x in results["raw"])
    version = client.version().get("Version", "?")
    section = "\n".join([
        "## Docker twin: containers converged per second",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} cores shared "
        f"with other work, Python {platform.python_version()}, Docker Engine {version}; one "
        f"WebApp with {n} replicas of `{IMAGE}`, {args.repeats} repeats in alternating order "
        f"(medians); `python bench/docker_twin.py --replicas {n} --repeats {args.repeats}`. "
        "Ratios within the run matter more than absolute numbers.",
        "",
        "| contender | seconds | containers/s | × raw |",
        "|---|---|---|---|",
        f"| raw docker-py loop (create+start, one at a time, same options) | {raw_wall:.2f} | "
        f"{n / raw_wall:.1f} | 1.00 |",
        f"| `reconcile-lab docker apply`, engine time (observe, plan, create+start, wait ready) "
        f"| {twin_engine:.2f} | {n / twin_engine:.1f} | {raw_wall / twin_engine:.2f} |",
        f"| `reconcile-lab docker apply`, wall time of the command (with Python start-up) | "
        f"{twin_wall:.2f} | {n / twin_wall:.1f} | {raw_wall / twin_wall:.2f} |",
        "",
    ])
    print(section)
    if args.write:
        write_section(section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
