"""``reconcile-lab sync DIR``: make the cluster equal to a folder of WebApp files.

Wiring only: the files are read and validated by the same loader as the Docker twin's (one bad
file, nothing applied), ``plans`` decides what to apply and what to prune, ``kube`` writes.
With ``--watch`` it does so again every ``--interval``: the smallest GitOps agent, which puts
back a hand edit of a synced WebApp the way the operator puts back a hand edit of a child.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from reconcile_lab import arguments, spec
from reconcile_lab.cluster import providers
from reconcile_lab.imperative import loading
from reconcile_lab.syncing import plans

OK, FAILED, INVALID = 0, 1, 2
DEFAULT_INTERVAL = 5.0

DESCRIPTION = """\
Make the cluster equal to a folder: every WebApp in DIR's *.yaml and *.yml files is applied
(server-side, field manager reconcile-lab-sync, labelled reconcile-lab.dev/project=PROJECT), and
every WebApp labelled with the project that no file declares any more is deleted (its
Deployment and Service go with it, by garbage collection), in the namespaces the files name
(-n for files that name none) and nowhere else. The folder is the definition of what
runs: change a file to change the app, remove it to remove the app.

Every file is validated first, with the same messages as `kubectl apply` and `reconcile-lab
docker apply`: one bad file and nothing is applied, nothing pruned.

Without --watch it syncs once and returns: a hand edit of a synced WebApp (kubectl scale,
kubectl edit) stays until the next sync. With --watch it syncs again every --interval, as a
GitOps agent (Flux, Argo CD) does, and puts such edits back.

The Docker twin's counterpart: reconcile-lab docker apply -f DIR --prune.
"""

EPILOG = """\
examples:
  reconcile-lab sync examples/gitops/apps               apply the folder, prune what left it
  reconcile-lab sync examples/gitops/apps --dry-run     only say what it would do
  reconcile-lab sync examples/gitops/apps --watch       keep the cluster equal to it (Ctrl-C)
  kubectl get webapps -l reconcile-lab.dev/project=apps what the folder owns

exit status: 0 the cluster equals the folder · 1 an API request failed (the rest was done) ·
2 invalid file or usage, nothing changed
"""


class Done(NamedTuple):
    applied: int = 0  # created or changed
    unchanged: int = 0
    pruned: int = 0
    failed: int = 0


def _say(message: str) -> None:
    print(message, flush=True)


def _files(paths: Sequence[str]) -> list[spec.WebApp]:
    return loading.load(loading.expand(paths))


def sync_once(apps: Sequence[spec.WebApp], *, project: str, namespace: str,
              dry_run: bool = False, quiet: bool = False) -> Done:
    """One pass over the folder's validated WebApps."""
    from reconcile_lab.declarative import kube

    live = [obj for ns in plans.namespaces(apps, namespace)
            for obj in kube.list_all(spec.KIND, ns, selector=plans.selector(project))]
    versions = {plans.key(obj): obj["metadata"].get("resourceVersion") for obj in live}
    plan = plans.plan(apps, live, project=project, namespace=namespace)
    counts = {"applied": 0, "unchanged": 0, "pruned": 0, "failed": 0}
    noun = f"webapp.{spec.GROUP}"
    for manifest in plan.apply:
        ns, name = plans.key(manifest)
        if dry_run:
            _say(f"{noun}/{name} would be applied (namespace {ns}; dry run)")
            continue
        try:
            stored = kube.apply_webapp(manifest, field_manager=plans.FIELD_MANAGER)
        except kube.KubeError as e:
            counts["failed"] += 1
            _say(f"{noun}/{name}: {e}")
            continue
        before = versions.get((ns, name))
        if before is not None and before == stored["metadata"].get("resourceVersion"):
            counts["unchanged"] += 1
            if not quiet:
                _say(f"{noun}/{name} unchanged (namespace {ns})")
        else:
            counts["applied"] += 1
            _say(f"{noun}/{name} {'configured' if before else 'applied'} (namespace {ns})")
    for ns, name in plan.prune:
        if dry_run:
            _say(f"{noun}/{name} would be pruned (namespace {ns}; no file declares it)")
            continue
        try:
            kube.delete_webapp(ns, name)
        except kube.KubeError as e:
            counts["failed"] += 1
            _say(f"{noun}/{name}: {e}")
            continue
        counts["pruned"] += 1
        _say(f"{noun}/{name} pruned (namespace {ns}; no file declares it any more)")
    return Done(**counts)


def _summary(done: Done, project: str) -> str:
    return (f"sync: project {project}: {done.applied} applied, {done.unchanged} unchanged, "
            f"{done.pruned} pruned" + (f", {done.failed} failed" if done.failed else ""))


def run(args: argparse.Namespace) -> int:
    from reconcile_lab.declarative import kube

    try:
        project = loading.project(args.paths, args.project)
        apps = _files(args.paths)  # a bad folder is refused before anything else
    except loading.InputError as e:
        print(f"sync: {e}", file=sys.stderr)
        return INVALID
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else providers.kubeconfig()
    if not kubeconfig.is_file():
        print(f"sync: no kubeconfig at {kubeconfig}.\n  fix: run `reconcile-lab cluster up` "
              "first, or pass --kubeconfig PATH", file=sys.stderr)
        return INVALID
    try:
        kube.connect(str(kubeconfig))
    except kube.KubeError as e:
        print(f"sync: {e}", file=sys.stderr)
        return FAILED
    if not args.watch:
        try:
            done = sync_once(apps, project=project, namespace=args.namespace,
                             dry_run=args.dry_run)
        except kube.KubeError as e:
            print(f"sync: {e}", file=sys.stderr)
            return FAILED
        _say(_summary(done, project))
        return FAILED if done.failed else OK
    _say(f"sync: keeping the cluster equal to {' '.join(args.paths)} (project {project}), "
         f"every {args.interval:g} s; Ctrl-C to stop")
    try:
        while True:
            try:
                done = sync_once(_files(args.paths), project=project,
                                 namespace=args.namespace, quiet=True)
                if done.applied or done.pruned or done.failed:
                    _say(_summary(done, project))
            except loading.InputError as e:  # a bad edit changes nothing; the last good stays
                print(f"sync: {e}\nsync: nothing applied; trying again in {args.interval:g} s",
                      file=sys.stderr)
            except kube.KubeError as e:
                print(f"sync: {e}; trying again in {args.interval:g} s", file=sys.stderr)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return OK


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="make the cluster equal to a folder of WebApp files",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="DIR",
                   help="a folder of WebApp files (or files); all of them are the desired state")
    p.add_argument("--project", default=None, metavar="NAME",
                   help="the label value that marks what the folder owns (default: the "
                        "folder's name)")
    p.add_argument("-n", "--namespace", default=plans.DEFAULT_NAMESPACE,
                   help="for WebApps whose file names no namespace (default: default)")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument("--watch", action="store_true",
                   help="sync again every --interval until Ctrl-C (a GitOps agent)")
    p.add_argument("--interval", type=arguments.seconds, default=DEFAULT_INTERVAL, metavar="S",
                   help=f"seconds between syncs with --watch (default: {DEFAULT_INTERVAL:g})")
    p.add_argument("--kubeconfig", help="cluster to use (default: the kit's own cluster)")
    p.set_defaults(func=run)
