"""The Docker twin's speed: containers converged per second, against a raw docker-py loop.

Each repeat, in alternating order: ``reconcile-lab docker apply`` of one WebApp with N replicas
(as a person would run it: a fresh process), and a raw docker-py loop that creates and starts
the same N containers, with the same options, one at a time (the twin's own concurrency: it is
a script that does one step after another). Everything is removed after each run.

    make bench                           # or: python bench/docker_twin.py --replicas 24 --repeats 3

Prints its Markdown section; with --write [DIR], saves the raw times in DIR/data/docker_twin.json
and regenerates DIR/RESULTS.md (default: bench/).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]  # run as a script: bench/ is a package

from bench import machines, results, sections  # noqa: E402
from bench.probing import say  # noqa: E402

IMAGE = "reconcile-lab/hello:v1"


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
    results.add_write_option(parser)
    args = parser.parse_args()
    started = time.monotonic()
    import docker

    from reconcile_lab.cluster import dockerd

    dockerd.ensure(progress=say)
    client = docker.from_env(timeout=120)
    client.images.get(IMAGE)  # fails loudly: build it with `make image`
    work = Path(tempfile.mkdtemp(prefix="bench-twin-"))
    results_by: dict[str, list[dict[str, float]]] = {"twin": [], "raw": []}
    for r in range(args.repeats):
        order = ("twin", "raw") if r % 2 == 0 else ("raw", "twin")
        for who in order:
            name = f"bench-{who}-{os.getpid()}-{r}"
            try:
                results_by[who].append(twin(name, args.replicas, work) if who == "twin"
                                    else raw(client, name, args.replicas))
            finally:
                clean(client, name)
            say(f"{who} run {r + 1}: {results_by[who][-1]}")

    version = str(client.version().get("Version", "?"))
    data = {"meta": machines.describe("bench/docker_twin.py", sys.argv[1:], started=started,
                                      versions={"docker": version}),
            "image": IMAGE, "replicas": args.replicas, "runs": results_by}
    print(sections.docker_twin(data))
    if args.write:
        results.save(args.write, "docker_twin", data)
        results.regenerate(args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
