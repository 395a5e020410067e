"""A folder as the desired state: what sync applies and prunes, and the twin's project label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconcile_lab import parsing, spec
from reconcile_lab.imperative import applying, containers, loading, plan, steps
from reconcile_lab.syncing import plans


def app(name: str, namespace: str | None = None, replicas: int = 2) -> spec.WebApp:
    return parsing.parse_document({
        "apiVersion": spec.API_VERSION, "kind": spec.KIND,
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "spec": {"image": "reconcile-lab/hello:v1", "replicas": replicas}})


def live(name: str, namespace: str = "default", project: str | None = "apps") -> dict[str, Any]:
    labels = {plans.LABEL_PROJECT: project} if project else {}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


# --- sync: what the cluster must become -----------------------------------------------------


def test_every_file_is_applied_whole_with_the_projects_label() -> None:
    done = plans.plan([app("hello"), app("shop", "prod")], [], project="apps")
    assert [plans.key(m) for m in done.apply] == [("default", "hello"), ("prod", "shop")]
    hello = done.apply[0]
    assert hello["metadata"]["labels"] == {plans.LABEL_PROJECT: "apps"}
    # Every field, defaults filled in: the folder owns replicas too, so a hand scale is drift.
    assert hello["spec"]["replicas"] == 2 and "resources" in hello["spec"]
    assert done.prune == ()


def test_an_autoscaled_apps_count_is_left_to_its_autoscaler() -> None:
    scaled = app("hello")
    scaled = scaled._replace(spec=scaled.spec.model_copy(update={
        "autoscale": spec.Autoscale(maxReplicas=4)}))
    applied = plans.plan([scaled], [], project="apps").apply[0]
    assert "replicas" not in applied["spec"]
    assert applied["spec"]["autoscale"]["maxReplicas"] == 4


def test_only_the_projects_webapps_that_left_the_folder_are_pruned() -> None:
    seen = [live("hello"), live("gone"), live("gone", "prod"), live("theirs", project="other"),
            live("by-hand", project=None), live("team-b", "elsewhere")]
    done = plans.plan([app("hello"), app("shop", "prod")], seen, project="apps")
    # Not in "elsewhere": no file names it, so its project of the same name is another team's.
    assert done.prune == (("default", "gone"), ("prod", "gone"))
    assert plans.namespaces([app("hello"), app("shop", "prod")]) == ("default", "prod")


def test_a_file_without_a_namespace_lands_in_the_one_given() -> None:
    done = plans.plan([app("hello")], [live("hello", "team")], project="apps", namespace="team")
    assert plans.key(done.apply[0]) == ("team", "hello") and done.prune == ()


# --- reading a folder -----------------------------------------------------------------------


def test_a_folder_stands_for_its_yaml_files_and_names_the_project(tmp_path: Path) -> None:
    folder = tmp_path / "my apps"
    folder.mkdir()
    for name in ("b.yaml", "a.yml", "notes.txt"):
        (folder / name).write_text("")
    assert loading.expand([str(folder)]) == [str(folder / "a.yml"), str(folder / "b.yaml")]
    assert loading.project([str(folder)]) == "my-apps"
    assert loading.project([str(folder / "a.yml")]) == "my-apps"
    assert loading.project([str(folder)], "given") == "given"
    with pytest.raises(loading.InputError, match="--project NAME"):
        loading.project([str(folder)], "-bad-")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(loading.InputError, match=r"no \*.yaml or \*.yml file"):
        loading.expand([str(empty)])


# --- the twin's project ---------------------------------------------------------------------


def test_a_projects_containers_and_network_carry_its_label_and_others_keep_their_hash() -> None:
    hello = app("hello")
    plain, member = containers.container(hello, 1), containers.container(hello, 1, project="apps")
    assert containers.LABEL_PROJECT not in plain.labels
    assert member.labels[containers.LABEL_PROJECT] == "apps"
    assert plain.config != member.config  # applied as a project: replaced once to carry it
    assert containers.container(hello, 1, project=None).config == plain.config
    todo = plan.plan(hello, [], project="apps")
    network = next(s for s in todo if isinstance(s, steps.CreateNetwork))
    assert network.labels[containers.LABEL_PROJECT] == "apps"
    assert "reconcile-lab/project=apps" in network.commands()[0]


class _Members:
    def __init__(self, found: set[tuple[str, str]]) -> None:
        self.found = found

    def members(self, project: str) -> set[tuple[str, str]]:
        assert project == "apps"
        return self.found


def test_the_twin_prunes_the_projects_apps_that_no_file_declares() -> None:
    engine = _Members({("hello", "default"), ("gone", "default"), ("shop", "prod")})
    files = [app("hello"), app("shop", "prod")]
    assert applying.strays(engine, files, "apps") == [("gone", "default")]  # type: ignore[arg-type]
    # prod is no file's namespace any more: its app of the same project is left alone.
    assert applying.strays(engine, [app("hello")], "apps") == [  # type: ignore[arg-type]
        ("gone", "default")]
