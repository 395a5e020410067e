"""The real node's parts that are not built with the control plane, made offline and cached.

- runc and the CNI plugins from Debian: the installed ones when present, otherwise the package
  fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into the cache (the host's
  package database is never changed for them);
- the pause image: a tiny static Go program (``assets/pause``) in an image FROM scratch,
  written as a docker-archive tar without any Docker engine;
- the node's certificates (the kubelet's, metrics-server's), signed by kwokctl's CA with
  openssl;
- the images a node's containerd serves: pause, the demo images and whatever
  ``reconcile-lab image load`` names (``docker save``).

Nothing here starts a long-running process or changes the host outside the cache and the
node's state directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from reconcile_lab import paths
from reconcile_lab.cluster import building, images, metricsconfig, nodeconfig
from reconcile_lab.cluster.probing import ClusterError, Progress

CNI_PACKAGE = "containernetworking-plugins"
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc")


def debs_dir() -> Path:
    return paths.cache_dir() / "debs"


def _apt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=600)


def unpacked(package: str, *, progress: Progress) -> Path:
    """A Debian package unpacked under the cache (once); returns its root directory."""
    root = debs_dir() / package
    marker = root / ".unpacked"
    if marker.is_file():
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise ClusterError(f"Debian's {package} is needed and this host has no apt-get/dpkg.\n"
                           f"  fix: install {package} with your package manager, then run again.")
    download = debs_dir() / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    progress(f"fetching Debian's {package} into {debs_dir()} (once)")
    result = _apt("download", package, cwd=download)
    if result.returncode != 0:
        _apt("update", "-q")
        result = _apt("download", package, cwd=download)
    debs = sorted(download.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        raise ClusterError(f"apt-get download {package} failed:\n{result.stderr[-1500:]}\n"
                           "  fix: check the Debian package mirror, then run again.")
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(root)], check=True, capture_output=True)
    marker.write_text(debs[-1].name + "\n")
    return root


def cni_bin(*, progress: Progress) -> Path:
    for installed in (Path("/usr/lib/cni"), Path("/opt/cni/bin")):
        if all((installed / p).is_file() for p in CNI_PLUGINS):
            return installed
    bin_dir = unpacked(CNI_PACKAGE, progress=progress) / "usr" / "lib" / "cni"
    if not all((bin_dir / p).is_file() for p in CNI_PLUGINS):
        raise ClusterError(f"{bin_dir} lacks one of the CNI plugins {', '.join(CNI_PLUGINS)}.\n"
                           f"  fix: rm -r {debs_dir() / CNI_PACKAGE} and run again.")
    return bin_dir


def find_runc() -> Path | None:
    for candidate in (shutil.which("runc"), *RUNC_CANDIDATES,
                      str(debs_dir() / "runc" / "usr" / "sbin" / "runc")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def runc(*, progress: Progress) -> Path:
    found = find_runc()
    if found is not None:
        return found
    return unpacked("runc", progress=progress) / "usr" / "sbin" / "runc"


# --- the pause image ------------------------------------------------------------------------


def go_program(name: str, *, progress: Progress) -> Path:
    """One of the kit's small Go programs (``assets/NAME``), compiled once per source."""
    assets = resources.files("reconcile_lab") / "assets" / name
    source = {n: assets.joinpath(n).read_bytes() for n in ("go.mod", "main.go")}
    key = hashlib.sha256(b"".join(source[n] for n in sorted(source))).hexdigest()[:12]
    binary = paths.cache_dir() / name / key / name
    if binary.is_file():
        return binary
    go = building.go_binary()
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as work:
        for file, data in source.items():
            (Path(work) / file).write_bytes(data)
        progress(f"compiling assets/{name} (static, a few seconds)")
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        result = subprocess.run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o",
                                 str(binary) + ".partial", "."], cwd=work, env=env,
                                capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"go build of assets/{name} failed:\n{result.stderr[-1500:]}")
    Path(str(binary) + ".partial").rename(binary)
    return binary


def _tar_bytes(members: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def docker_archive(binary: bytes, *, tag: str) -> bytes:
    """A one-layer image FROM scratch whose entrypoint is /pause, as `docker save` writes it."""
    layer = _tar_bytes({"pause": (binary, 0o755)})
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "reconcile-lab: assets/pause"}],
    }, sort_keys=True).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_id}.json", "RepoTags": [tag],
                            "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    return _tar_bytes({f"{config_id}.json": (config, 0o644),
                       f"{diff_id}/layer.tar": (layer, 0o644),
                       "manifest.json": (manifest, 0o644)})


def pause_archive(*, progress: Progress) -> Path:
    binary = go_program("pause", progress=progress)
    archive = binary.with_name("pause-image.tar")
    if not archive.is_file():
        archive.write_bytes(docker_archive(binary.read_bytes(), tag=nodeconfig.PAUSE_IMAGE))
    return archive


# --- certificates ---------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed in {cwd}:\n{result.stderr[-1000:]}")


def certificates(layout: nodeconfig.Layout) -> None:
    """The node's certificates (``nodeconfig.certificates``), each signed by kwokctl's CA."""
    for cert in (*nodeconfig.certificates(layout), metricsconfig.certificate(layout)):
        out, name = cert.path.parent, cert.path.name
        out.mkdir(parents=True, exist_ok=True)
        if (out / f"{name}.crt").is_file():
            continue
        (out / f"{name}.ext").write_text(cert.extensions)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"{name}.key", "-subj", cert.subject, "-out", f"{name}.csr",
                 cwd=out)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(layout.pki / "ca.crt"),
                 "-CAkey", str(layout.pki / "ca.key"), "-set_serial",
                 str(int.from_bytes(os.urandom(8), "big")), "-days", "365",
                 "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=out)


# --- images into the node's containerd ------------------------------------------------------


def ctr(layout: nodeconfig.Layout, *args: str, stdin: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(building.CONTAINERD.binary("ctr")), "--address",
                           str(layout.socket), "--namespace", "k8s.io", *args], input=stdin,
                          capture_output=True, check=False, timeout=timeout)


def import_images(layout: nodeconfig.Layout, *, progress: Progress) -> None:
    """pause and the demo images, so that no pod ever needs a registry."""
    _ctr_import(layout, pause_archive(progress=progress).read_bytes())
    images.build(progress=progress)
    import_docker_images(layout, [images.image(t) for t in images.TAGS])


def import_docker_images(layout: nodeconfig.Layout, names: list[str]) -> None:
    """Images of the Docker engine into the node's containerd: `docker save`, `ctr import`.

    The one way an image reaches the real node: the demo images at start, the operator's
    image (``reconcile-lab image load``) later.
    """
    saved = subprocess.run(["docker", "save", *names], capture_output=True, check=False,
                           timeout=300)
    if saved.returncode != 0:
        raise ClusterError(f"docker save of {', '.join(names)} failed: "
                           f"{saved.stderr.decode()[-800:]}")
    _ctr_import(layout, saved.stdout)


def _ctr_import(layout: nodeconfig.Layout, tar: bytes) -> None:
    result = ctr(layout, "images", "import", "-", stdin=tar, timeout=300)
    if result.returncode != 0:
        raise ClusterError("importing images into the node's containerd failed: "
                           f"{result.stderr.decode()[-800:]}\n  log: {layout.logs}/containerd.log")
