"""The demo image ``reconcile-lab/hello:v1`` and ``:v2``, built offline.

The Dockerfile in ``images/hello`` starts FROM scratch; the build context gets a static busybox
(Debian's busybox-static) so no base image is ever pulled. Uses the docker CLI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from reconcile_lab.cluster.probing import ClusterError, Progress

REPOSITORY = "reconcile-lab/hello"
TAGS = ("v1", "v2")
SOURCE = Path(__file__).resolve().parents[3] / "images" / "hello"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def image(tag: str) -> str:
    return f"{REPOSITORY}:{tag}"


def _static_busybox(progress: Progress) -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    if Path("/etc/debian_version").exists() and os.geteuid() == 0:
        progress("installing Debian's busybox-static (once)…")
        subprocess.run(["apt-get", "install", "-y", "-q", "busybox-static"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
        if Path("/bin/busybox").is_file():
            return Path("/bin/busybox")
    raise ClusterError("no static busybox to build the demo image from scratch.\n"
                       "  fix: sudo apt-get install busybox-static, then run again.")


def _is_static(path: Path) -> bool:
    """A dynamically linked ELF names its loader near the start; a static one does not."""
    head = path.read_bytes()[:8192]
    return head.startswith(b"\x7fELF") and b"/ld-linux" not in head and b"/ld-musl" not in head


SOURCE_LABEL = "reconcile-lab.dev/source"


def source_digest() -> str:
    """A digest of images/hello: an image built from other files is rebuilt."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCE.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(SOURCE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def exists(tag: str) -> bool:
    """The image is there and was built from the current images/hello."""
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             f'{{{{index .Config.Labels "{SOURCE_LABEL}"}}}}', image(tag)],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == source_digest()


def build(*, progress: Progress, tags: tuple[str, ...] = TAGS, force: bool = False) -> None:
    if not force and all(exists(t) for t in tags):
        progress(f"demo image {', '.join(image(t) for t in tags)}: present")
        return
    busybox = _static_busybox(progress)
    with tempfile.TemporaryDirectory(prefix="hello-image-") as context:
        ctx = Path(context)
        shutil.copytree(SOURCE, ctx, dirs_exist_ok=True)
        shutil.copy2(busybox, ctx / "busybox")
        for tag in tags:
            progress(f"building {image(tag)} from scratch")
            result = subprocess.run(
                ["docker", "build", "-q", "--build-arg", f"VERSION={tag}",
                 "--label", f"{SOURCE_LABEL}={source_digest()}", "-t", image(tag), str(ctx)],
                capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ClusterError(f"docker build of {image(tag)} failed:\n{result.stderr[-2000:]}")
