"""``reconcile-lab observe …``: dashboards, the monitoring stack, and a picture without Grafana.

- ``dashboards [--check]``: write (or compare) the files :mod:`.dashboards` generates;
- ``up`` / ``down``: Prometheus and Grafana with docker compose
  (examples/observability/docker-compose.yaml), refusing at once when an image is missing:
  nothing is pulled on the participant's behalf;
- ``prometheus``: Prometheus from the distribution (Debian's ``prometheus``, installed the first
  time) in the foreground, scraping both engines on 127.0.0.1 where :mod:`reconcile_lab.ports`
  says they listen, for machines where Grafana cannot run;
- ``render``: the main dashboard's panels, queried from a Prometheus, plotted to a PNG.

Wiring only: what the dashboards show is decided in :mod:`.dashboards`, how a panel is drawn in
:mod:`.render`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile_lab import debian, paths, ports
from reconcile_lab.cluster import dockerd
from reconcile_lab.cluster.probing import ClusterError
from reconcile_lab.observe import dashboards, grafana

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / dashboards.OBSERVABILITY / "docker-compose.yaml"
GRAFANA_URL = "http://127.0.0.1:3000"
OK, FAIL = 0, 1


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


# --- dashboards -----------------------------------------------------------------------------


def stale(root: Path = REPO) -> list[str]:
    """Generated files that differ from what the code says (or are missing)."""
    return [relative for relative, text in grafana.generated(root).items()
            if not (root / relative).is_file() or (root / relative).read_text() != text]


def cmd_dashboards(args: argparse.Namespace) -> int:
    if args.check:
        if found := stale():
            _say(f"stale: {', '.join(found)}: run `make dashboards` and commit the result")
            return FAIL
        _say("dashboards are up to date")
        return OK
    for relative, text in grafana.generated(REPO).items():
        target = REPO / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        _say(f"wrote {relative}")
    return OK


# --- docker compose -------------------------------------------------------------------------


def compose_images(compose: Path = COMPOSE) -> list[str]:
    import yaml

    services = yaml.safe_load(compose.read_text())["services"]
    return [str(s["image"]) for s in services.values() if "image" in s]


def _compose_command() -> list[str] | None:
    docker = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if docker.returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def missing_images(images: list[str]) -> list[str]:
    return [image for image in images
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                              check=False).returncode != 0]


def cmd_up(args: argparse.Namespace) -> int:
    if shutil.which("docker") is None or not dockerd.answers():
        _say("no Docker engine answers (fix: `make engine`, or start Docker Desktop)")
        return FAIL
    if missing := missing_images(compose_images()):
        _say("these images are not on this machine: " + ", ".join(missing) + "\n"
             "  Nothing is pulled for you. With internet access run:\n"
             + "".join(f"    docker pull {image}\n" for image in missing)
             + "  Without it, bring them on a machine that has it:\n"
               "    docker save IMAGE | gzip > image.tar.gz   # there\n"
               "    docker load < image.tar.gz                 # here\n"
               "  Or skip Grafana: `make prometheus` and `make render` need no image "
               "(docs/observability.md).")
        return FAIL
    compose = _compose_command()
    if compose is None:
        _say("docker compose is not installed (fix: install the compose plugin, e.g. "
             "`apt-get install docker-compose`, or Docker Desktop)")
        return FAIL
    done = subprocess.run([*compose, "-f", str(COMPOSE), "up", "-d", "--pull", "never"],
                          check=False)
    if done.returncode != 0:
        return FAIL
    _say(f"Grafana    {GRAFANA_URL}  (dashboards in the folder reconcile-lab; admin/admin)")
    _say("Prometheus http://127.0.0.1:9090/targets  (both targets should be UP)")
    _say("scraping host.docker.internal:8000 (operator) and :8001 (twin); on Linux bind them "
         "to the docker0 address: see docs/observability.md")
    return OK


def cmd_down(args: argparse.Namespace) -> int:
    compose = _compose_command()
    if compose is None:
        _say("docker compose is not installed: nothing of ours can be running")
        return OK
    return OK if subprocess.run([*compose, "-f", str(COMPOSE), "down", "-v"],
                                check=False).returncode == 0 else FAIL


# --- Prometheus from the distribution ---------------------------------------------------------


def prometheus_binary(*, progress: Callable[[str], None] = _say) -> str:
    """Debian's Prometheus, installed (without its service) the first time."""
    debian.ensure(["prometheus"], needed_by="`reconcile-lab observe prometheus`",
                  progress=progress)  # nothing to do when it is there
    if found := shutil.which("prometheus") or (
            "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None):
        return found
    raise ClusterError("the prometheus package is installed but no prometheus binary is on "
                       "PATH.\n  fix: check `dpkg -L prometheus`, then run again.")


def cmd_prometheus(args: argparse.Namespace) -> int:
    binary = prometheus_binary()
    storage = paths.state_dir() / "prometheus"
    storage.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config is None:  # both engines where they listen on this machine now
        import yaml

        config = str(storage / "prometheus.yml")
        operator, twin = ports.OPERATOR_METRICS.get(), ports.TWIN_METRICS.get()
        scrape = dashboards.local_scrape_config(operator, twin)
        Path(config).write_text(yaml.safe_dump(scrape, sort_keys=False))
        _say(f"scraping the operator on 127.0.0.1:{operator} and the twin's loop on "
             f"127.0.0.1:{twin} (config {config})")
    listen = args.listen or f"127.0.0.1:{ports.PROMETHEUS.get()}"
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
            f"--web.listen-address={listen}", "--storage.tsdb.retention.time=2d"]
    _say(f"Prometheus on http://{listen}, data in {storage}; Ctrl-C stops it")
    os.execv(binary, argv)  # replaces this process: Ctrl-C reaches Prometheus


# --- render ---------------------------------------------------------------------------------


def cmd_render(args: argparse.Namespace) -> int:
    from reconcile_lab.observe import render

    try:
        render.render(args.prometheus, Path(args.out), dashboard=args.dashboard,
                      since=args.since, namespace=args.namespace, app=args.app,
                      rate_interval=args.rate_interval)
    except render.RenderError as e:
        _say(f"error: {e}")
        return FAIL
    _say(f"wrote {args.out}")
    return OK


def register(sub: Any) -> None:
    """Add ``observe dashboards|up|down|prometheus|render`` to the main CLI."""
    top = sub.add_parser(
        "observe", help="dashboards, Prometheus and Grafana, and a PNG of the main dashboard",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            Watch both engines in Grafana (or without it). See docs/observability.md.

            examples:
              reconcile-lab observe up          # Prometheus + Grafana with docker compose
              reconcile-lab observe prometheus  # Debian's Prometheus on 127.0.0.1:9090
              reconcile-lab observe render -o reconciliation.png
        """).strip())
    verbs = top.add_subparsers(dest="action", metavar="ACTION", required=True)

    d = verbs.add_parser("dashboards", help="write the generated dashboards and ConfigMaps")
    d.add_argument("--check", action="store_true",
                   help="exit 1 when a committed file differs from what the code says")
    d.set_defaults(func=cmd_dashboards)

    verbs.add_parser("up", help="start Prometheus and Grafana (docker compose), print the URLs"
                     ).set_defaults(func=cmd_up)
    verbs.add_parser("down", help="stop them and remove their data").set_defaults(func=cmd_down)

    p = verbs.add_parser("prometheus", help="run the distribution's Prometheus in the foreground")
    p.add_argument("--config", help="scrape config (default: one written into the state "
                   "directory for the operator on 127.0.0.1:PORT, "
                   f"{ports.OPERATOR_METRICS.help()}, and the twin's loop on 127.0.0.1:PORT, "
                   f"{ports.TWIN_METRICS.help()})")
    p.add_argument("--listen", help="address:port of its web UI (default 127.0.0.1:PORT, "
                   f"PORT {ports.PROMETHEUS.help()})")
    p.set_defaults(func=cmd_prometheus)

    r = verbs.add_parser("render", help="plot a dashboard's panels from Prometheus to a PNG")
    r.add_argument("--prometheus", default=ports.url(ports.PROMETHEUS), help="Prometheus base URL")
    r.add_argument("-o", "--out", default="reconciliation.png", help="PNG file to write")
    r.add_argument("--dashboard", default=dashboards.RECONCILIATION.uid,
                   choices=[d.uid for d in dashboards.ALL], help="which dashboard")
    r.add_argument("--since", default="15m", help="time range up to now, e.g. 5m, 1h")
    r.add_argument("--namespace", default=".*", help="the $namespace variable (a regex)")
    r.add_argument("--app", default=".*", help="the $app variable (a regex)")
    r.add_argument("--rate-interval", default="30s", help="the $__rate_interval variable")
    r.set_defaults(func=cmd_render)
