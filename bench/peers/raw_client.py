"""The physical-limit proxy, and the load generator of every contender.

A tight aiohttp loop, ``--concurrency`` requests in flight (the operator's worker count):

- ``--kind pairs``: POST the very Deployment+Service pairs the operator renders (without the
  owner reference: there is no WebApp to own them, and the garbage collector would delete
  orphans). No cache, no status, no events: only the children. This is the raw write rate.
- ``--kind webapps`` / ``--kind foos``: POST N WebApps (or sample-controller Foos) for a
  controller to converge.

Waits for a line on stdin before the first request, so that the harness times the writes and
not the Python start-up; prints one JSON line when done.

    python bench/peers/raw_client.py --kubeconfig K --namespace NS --count N --kind pairs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from typing import Any

import aiohttp
from kubernetes import client, config

from reconcile_lab import parsing
from reconcile_lab import spec as specs
from reconcile_lab.declarative import render

IMAGE = "reconcile-lab/hello:v1"


def manifests(kind: str, namespace: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    if kind == "webapps":
        path = f"/apis/{specs.API_VERSION}/namespaces/{namespace}/{specs.PLURAL}"
        return [(path, {"apiVersion": specs.API_VERSION, "kind": specs.KIND,
                        "metadata": {"name": f"app-{i}", "namespace": namespace},
                        "spec": {"image": IMAGE, "replicas": 1}}) for i in range(count)]
    if kind == "foos":
        path = f"/apis/samplecontroller.k8s.io/v1alpha1/namespaces/{namespace}/foos"
        return [(path, {"apiVersion": "samplecontroller.k8s.io/v1alpha1", "kind": "Foo",
                        "metadata": {"name": f"app-{i}", "namespace": namespace},
                        "spec": {"deploymentName": f"app-{i}", "replicas": 1}})
                for i in range(count)]
    out = []
    for i in range(count):
        name = f"app-{i}"
        for child in render.children(render.Owner(name, namespace, "0"),
                                     parsing.parse_spec({"image": IMAGE}, name=name)):
            del child["metadata"]["ownerReferences"]
            path = (f"/apis/apps/v1/namespaces/{namespace}/deployments"
                    if child["kind"] == "Deployment" else f"/api/v1/namespaces/{namespace}/services")
            out.append((path, child))
    return out


async def run(kubeconfig: str, kind: str, namespace: str, count: int,
              concurrency: int) -> dict[str, Any]:
    config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    c = client.Configuration.get_default_copy()
    tls = ssl.create_default_context(cafile=c.ssl_ca_cert)
    if c.cert_file:
        tls.load_cert_chain(c.cert_file, c.key_file)
    headers = {"Content-Type": "application/json"}
    if c.api_key.get("authorization"):
        headers["Authorization"] = c.api_key["authorization"]
    work = manifests(kind, namespace, count)
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    errors = 0
    connector = aiohttp.TCPConnector(ssl=tls, limit=concurrency)
    async with aiohttp.ClientSession(c.host, connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                path, body = queue.get_nowait()
                async with session.post(path + "?fieldManager=raw", json=body) as r:
                    await r.read()
                    errors += r.status >= 300

        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.monotonic() - started
    return {"objects": len(work), "errors": errors, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--kind", choices=("pairs", "webapps", "foos"), default="pairs")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    result = asyncio.run(run(args.kubeconfig, args.kind, args.namespace, args.count,
                             args.concurrency))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
