"""Building the control plane: pinned versions agree, and failures say what to do."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from reconcile_lab.cluster import building, versions


@pytest.mark.parametrize(("component", "module"), [
    (building.KUBERNETES, "k8s.io/kubernetes"),
    (building.ETCD, "go.etcd.io/etcd/server/v3"),
    (building.KWOK, "sigs.k8s.io/kwok"),
    (building.CONTAINERD, "github.com/containerd/containerd/v2"),
    (building.COREDNS, "github.com/coredns/coredns"),
    (building.METRICS_SERVER, "sigs.k8s.io/metrics-server"),
])
def test_wrapper_modules_require_the_pinned_versions(component: building.Component,
                                                     module: str) -> None:
    gomod = (resources.files("reconcile_lab") / "assets" / "go" / component.name / "go.mod")
    assert re.search(rf"^require {re.escape(module)} {component.version}$", gomod.read_text(), re.M)


def test_every_component_has_a_wrapper_module() -> None:
    wrappers = {p.name for p in (resources.files("reconcile_lab") / "assets" / "go").iterdir()}
    assert {c.name for c in building.ALL} == wrappers


@pytest.mark.parametrize("component", building.ALL, ids=lambda c: c.name)
def test_the_wrapper_module_imports_every_package_that_is_built(
        component: building.Component) -> None:
    # `go mod tidy` keeps only what tools.go imports: a package it does not import fails a
    # cold build (a warm module cache would hide that).
    tools = (resources.files("reconcile_lab") / "assets" / "go" / component.name / "tools.go")
    imported = set(re.findall(r'_ "([^"]+)"', tools.read_text()))
    assert {package for package, _ in component.packages} <= imported


def test_kubernetes_versions_are_stamped_into_the_binaries() -> None:
    assert f"gitVersion={versions.KUBERNETES}" in building.KUBERNETES.ldflags
    assert f"version.gitVersion={versions.METRICS_SERVER}" in building.METRICS_SERVER.ldflags


def test_no_go_toolchain_is_named_with_the_fix(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_LAB_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    with pytest.raises(building.BuildError, match="Go toolchain is not on PATH") as caught:
        building.build(building.ETCD, progress=lambda _: None)
    assert "fix:" in str(caught.value)


@pytest.mark.slow
def test_a_failed_build_shows_the_log_and_caches_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_LAB_CACHE", str(tmp_path))
    broken = building.Component("kwok", "v0.0.0-broken",
                                (("sigs.k8s.io/kwok/cmd/does-not-exist", "nothing"),))
    lines: list[str] = []
    with pytest.raises(building.BuildError, match="compiling kwok failed") as caught:
        building.build(broken, progress=lines.append)
    assert "does-not-exist" in str(caught.value)
    assert not broken.directory.exists()
    assert any("downloading modules" in line for line in lines)


def test_no_docker_engine_is_named_with_the_fix(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from reconcile_lab.cluster import dockerd, probing

    monkeypatch.setattr(dockerd, "SOCKET", tmp_path / "docker.sock")  # nothing listens here
    monkeypatch.setattr(dockerd, "_is_debian_root", lambda: False)
    with pytest.raises(probing.ClusterError, match="no Docker engine answers") as caught:
        dockerd.ensure(progress=lambda _: None)
    assert str(tmp_path / "docker.sock") in str(caught.value)
    assert "fix:" in str(caught.value)
