"""The operator's image (``make docker-build``), built with no registry at all.

1. The base: ``mmdebstrap`` (Debian's, installed once with apt-get) writes a minimal Debian of
   the host's release with python3 as a tarball, from the host's own apt sources and settings;
   ``docker import`` makes it ``reconcile-lab/base:<release>-python<version>``.
2. The operator's Python dependencies (pyproject.toml's list): wheels for that release's
   Python, downloaded by pip on the host into the cache, then installed from there
   (``--no-index``) into a directory of the cache.
3. ``docker build --network none -f deploy/Dockerfile`` on a context made of that directory and
   the operator's package: nothing can be fetched while it runs.

Each step is labelled or keyed by a digest of its inputs (``reconcile-lab.dev/source``, as the
demo images are) and skipped when its result is there. The recipes are ``imagerecipes.py``'s;
this module runs them (apt-get, mmdebstrap, pip, docker) and writes only under the cache.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from reconcile_lab import paths
from reconcile_lab.cluster import imagerecipes
from reconcile_lab.cluster.imagerecipes import Release
from reconcile_lab.cluster.probing import ClusterError, Progress

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
PACKAGE = REPO / "operator" / "reconcile_lab"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def work_dir() -> Path:
    return paths.cache_dir() / "operator-image"


def _run(argv: list[str], *, what: str, timeout: float = 1800,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                            env=env)
    if result.returncode != 0:
        raise ClusterError(f"{what} failed ({argv[0]} exited {result.returncode}):\n"
                           f"{(result.stderr or result.stdout)[-2000:]}")
    return result


# --- the host ---------------------------------------------------------------------------------


def host_release() -> Release:
    """The host's Debian release: the base matches it, so host-made wheels fit the image."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key] = value.strip().strip('"')
    except OSError:
        pass
    codename = fields.get("VERSION_CODENAME", "")
    if fields.get("ID") != "debian" or codename not in imagerecipes.RELEASES:
        raise ClusterError(
            f"the operator's base image is made from Debian's packages with this host's apt, "
            f"and this host is {fields.get('PRETTY_NAME', 'not Debian')}.\n  fix: build on "
            f"Debian {' or '.join(imagerecipes.RELEASES)}, or run the operator out of cluster "
            "(`make run`).")
    return imagerecipes.RELEASES[codename]


def _machine() -> str:
    machine = platform.machine()
    if machine not in imagerecipes.DEBIAN_ARCH:
        raise ClusterError(f"no recipe for a {machine} image; known: "
                           f"{', '.join(imagerecipes.DEBIAN_ARCH)}")
    return machine


def host_sources(release: Release) -> imagerecipes.Sources:
    texts: list[tuple[str, str]] = []
    for place in APT_SOURCES:
        files = sorted(place.iterdir()) if place.is_dir() else [place]
        texts += [(f.name, f.read_text()) for f in files if f.is_file()]
    sources = imagerecipes.release_sources(texts, release.codename)
    if sources.empty():
        raise ClusterError(f"no apt source for Debian {release.codename} in "
                           f"{' or '.join(map(str, APT_SOURCES))}.\n  fix: add one "
                           "(see sources.list(5)), `apt-get update`, then run again.")
    return sources


def host_apt_options() -> list[str]:
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=False)
    return imagerecipes.apt_options(dump.stdout)


def ensure_package(command: str, package: str, *, progress: Progress) -> str:
    """A Debian tool, installed once with apt-get (as ``engine up`` installs docker.io)."""
    if found := shutil.which(command):
        return found
    if not Path("/etc/debian_version").exists() or os.geteuid() != 0:
        raise ClusterError(f"{command} is needed to build the operator's base image.\n"
                           f"  fix: sudo apt-get install {package}, then run again.")
    progress(f"installing Debian's {package} (once)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (found := shutil.which(command)):
        raise ClusterError(f"apt-get install {package} failed:\n{result.stderr[-1500:]}\n"
                           "  fix: check the Debian package mirror, then run again.")
    return found


# --- docker images ----------------------------------------------------------------------------


def label(image: str) -> str | None:
    """The image's source label, or None when the engine has no such image."""
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             f'{{{{index .Config.Labels "{imagerecipes.SOURCE_LABEL}"}}}}', image],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def image_id(image: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _drop_replaced(old: str | None, image: str) -> None:
    """The image a rebuild untagged: gone, unless a container or another tag still uses it
    (then docker refuses, and that is right)."""
    if old is not None and old != image_id(image):
        subprocess.run(["docker", "image", "rm", old], capture_output=True, check=False)


def build_base(*, progress: Progress, force: bool = False) -> str:
    """The base image (Debian + python3), made once per release, sources and recipe."""
    release, machine = host_release(), _machine()
    tag = imagerecipes.base_tag(release)
    sources, apt_opts = host_sources(release), host_apt_options()
    arch = imagerecipes.DEBIAN_ARCH[machine]
    recipe = imagerecipes.mmdebstrap_argv(release, arch=arch, sources=["SOURCES"],
                                          apt_opts=apt_opts, output="-")
    source = imagerecipes.digest(*recipe, sources.one_line, sources.deb822)
    if not force and label(tag) == source:
        progress(f"base image {tag}: present")
        return tag
    mmdebstrap = ensure_package("mmdebstrap", "mmdebstrap", progress=progress)
    started = time.monotonic()
    work_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="base-", dir=work_dir()) as scratch:
        tmp = Path(scratch)
        files = []
        for name, text in (("host.list", sources.one_line), ("host.sources", sources.deb822)):
            if text.strip():
                (tmp / name).write_text(text)
                files.append(str(tmp / name))
        tarball = tmp / "rootfs.tar"
        progress(f"building base image {tag}: mmdebstrap, Debian {release.codename} "
                 f"({arch}) + {', '.join(imagerecipes.BASE_PACKAGES)} from the host's apt "
                 "sources")
        argv = imagerecipes.mmdebstrap_argv(release, arch=arch, sources=files,
                                            apt_opts=apt_opts, output=str(tarball))
        _run([mmdebstrap, *argv[1:]], what="mmdebstrap")
        progress(f"docker import of {tarball.stat().st_size >> 20} MiB as {tag}")
        changes = [a for c in imagerecipes.import_changes(source) for a in ("--change", c)]
        old = image_id(tag)
        _run(["docker", "import", *changes, str(tarball), tag], what="docker import")
        _drop_replaced(old, tag)
    progress(f"base image {tag} built in {time.monotonic() - started:.0f}s")
    return tag


# --- the operator's Python dependencies -------------------------------------------------------


def requirements() -> list[str]:
    """pyproject.toml's [project] dependencies, less what the pod never imports."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return imagerecipes.image_requirements([str(r) for r in project["dependencies"]])


def _pip(*args: str, what: str) -> None:
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], what=what)


def site_packages(release: Release, *, progress: Progress) -> Path:
    """The dependencies installed for the image's Python, in a directory of the cache.

    pip downloads the wheels on the host (its own configuration: index, proxy, certificates)
    into ``wheels-<key>``; ``site-<key>`` is installed from there alone, with --no-index.
    """
    flags = imagerecipes.pip_target_flags(release, machine=_machine())
    reqs = requirements()
    key = imagerecipes.digest(*flags, *reqs)
    wheels, site = work_dir() / f"wheels-{key}", work_dir() / f"site-{key}"
    if (site / ".complete").is_file():
        return site
    started = time.monotonic()
    if not (wheels / ".complete").is_file():
        progress(f"downloading wheels for Python {release.python} ({len(reqs)} requirements "
                 f"and their dependencies) into {wheels}")
        _pip("download", "-q", "--progress-bar", "off", "--dest", str(wheels), *flags, *reqs,
             what="pip download")
        (wheels / ".complete").write_text("\n".join(reqs) + "\n")
    progress(f"installing them from {wheels.name} with --no-index into {site}")
    partial = site.with_name(site.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _pip("install", "-q", "--no-index", "--find-links", str(wheels), "--target", str(partial),
         *flags, *reqs, what="pip install --no-index")
    shutil.rmtree(partial / "bin", ignore_errors=True)  # scripts with the host's interpreter
    (partial / ".complete").write_text("\n".join(reqs) + "\n")
    shutil.rmtree(site, ignore_errors=True)
    partial.rename(site)
    progress(f"dependencies ready in {time.monotonic() - started:.0f}s")
    return site


# --- the operator's image ---------------------------------------------------------------------


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard links when the cache and the context share a file system: no 100 MiB copy."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def build(image: str, *, progress: Progress, force: bool = False) -> None:
    """The operator's image ``image``: rebuilt only when the base, the dependencies, the
    operator's code or deploy/Dockerfile changed."""
    started = time.monotonic()
    base = build_base(progress=progress, force=force)
    site = site_packages(host_release(), progress=progress)
    files = _package_files()
    base_id = image_id(base) or ""
    source = imagerecipes.digest(base_id, site.name, DOCKERFILE.read_bytes(), *(
        part for f in files for part in (str(f.relative_to(PACKAGE)), f.read_bytes())))
    if not force and label(image) == source:
        progress(f"operator image {image}: present (built from these sources)")
        return
    same = subprocess.run(["docker", "images", "-q", "--filter",
                           f"label={imagerecipes.SOURCE_LABEL}={source}"],
                          capture_output=True, text=True, check=False).stdout.split()
    if not force and same:  # built from these sources under another name
        old = image_id(image)
        _run(["docker", "tag", same[0], image], what="docker tag")
        _drop_replaced(old, image)
        progress(f"operator image {image}: tagged {same[0][:12]}, built from these sources")
        return
    work_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="context-", dir=work_dir()) as scratch:
        ctx = Path(scratch)
        _copy_tree(site, ctx / "site")
        for f in files:
            target = ctx / "app" / "reconcile_lab" / f.relative_to(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        # Compiled here, once: the pod's root file system is read-only.
        _run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
              str(ctx / "app")], what="compileall")
        shutil.copy2(DOCKERFILE, ctx / "Dockerfile")
        progress(f"building {image} from {base} (docker build --network none)")
        old = image_id(image)
        _run(["docker", "build", "-q", "--network", "none", "--build-arg", f"BASE={base}",
              "--label", f"{imagerecipes.SOURCE_LABEL}={source}", "-t", image, str(ctx)],
             what=f"docker build of {image}")
        _drop_replaced(old, image)
    progress(f"operator image {image} built in {time.monotonic() - started:.0f}s")
