"""How the operator's image is made without a registry: pure data and text, no I/O.

The base is a minimal Debian of the host's own release with python3, made by ``mmdebstrap``
from the host's apt sources (only the lines for that release) and turned into an image by
``docker import``. The operator's Python dependencies are wheels for that release's Python and
C library, downloaded by pip on the host and installed into a directory the Dockerfile copies.
Every input is digested into a label, so an image built from the same inputs is never rebuilt.

Nothing here reads a file, asks the host anything or starts a process: ``operatorimage.py``
does, and hands what it read to these functions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

BASE_REPOSITORY = "reconcile-lab/base"
SOURCE_LABEL = "reconcile-lab.dev/source"  # the same label the demo images carry
APP_DIR = "/opt/reconcile-lab/app"
SITE_DIR = "/opt/reconcile-lab/site"
USER = "65532:65532"  # deploy/operator.yaml's runAsUser: restricted pod security
# A name for that user (as distroless images have): kopf asks getpass.getuser() for its
# identity, and Python's pwd lookup fails for a uid that /etc/passwd lacks.
NONROOT_USER = ("nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin",
                "nonroot:x:65532:")
# What the image needs beyond Debian's Essential set: the interpreter and its standard library.
BASE_PACKAGES = ("python3",)
# Documentation, manual pages and translations are never read in a pod.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                 "/usr/share/locale/*", "/usr/share/lintian/*")
DPKG_KEEP = ("/usr/share/doc/*/copyright",)  # licences stay
# Merged /usr by symlinks (the debootstrap way): the usrmerge package would bring all of perl.
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
# Plots are drawn on a participant's machine (`observe render`, `compare`), never in the
# operator's pod: matplotlib and its numeric stack stay out of the image.
LEFT_OUT = ("matplotlib",)
# The host's apt settings the base's download must honour (proxies, snapshot mirrors).
APT_KEYS = re.compile(r"^Acquire::(https?|ftp)::|^Acquire::(Check-Valid-Until|Check-Date|Retries)\b")


class Release(NamedTuple):
    """A Debian release: the Python it ships and the C library its wheels must fit."""

    codename: str
    python: str
    glibc: tuple[int, int]


RELEASES = {r.codename: r for r in (Release("bookworm", "3.11", (2, 36)),
                                    Release("trixie", "3.13", (2, 41)))}
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class Sources(NamedTuple):
    """The host's apt sources for one release, in both of apt's formats."""

    one_line: str  # sources.list lines
    deb822: str  # .sources stanzas

    def empty(self) -> bool:
        return not (self.one_line.strip() or self.deb822.strip())


def base_tag(release: Release) -> str:
    return f"{BASE_REPOSITORY}:{release.codename}-python{release.python}"


def _suite_of_release(suite: str, codename: str) -> bool:
    return suite == codename or suite.startswith(f"{codename}-") or suite.startswith(f"{codename}/")


def release_sources(texts: Iterable[tuple[str, str]], codename: str) -> Sources:
    """Only the binary package sources of ``codename`` (its updates and security suites too).

    ``texts``: (file name, content) of the host's sources files. Third-party repositories, which
    name other suites, stay out: the base is Debian's and nothing else.
    """
    lines: list[str] = []
    stanzas: list[str] = []
    for name, text in texts:
        if name.endswith(".list"):
            for line in text.splitlines():
                entry = line.split("#", 1)[0].strip()
                words = re.sub(r"\[[^\]]*\]", " ", entry).split()  # without [options]
                if words[:1] == ["deb"] and len(words) >= 3 \
                        and _suite_of_release(words[2], codename):
                    lines.append(entry)
        elif name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                kept = [ln for ln in stanza.splitlines() if not ln.lstrip().startswith("#")]
                fields = _deb822_fields(kept)
                suites = fields.get("suites", "").split()
                if ("deb" in fields.get("types", "").split()
                        and fields.get("enabled", "yes").lower() != "no"
                        and any(_suite_of_release(s, codename) for s in suites)):
                    stanzas.append("\n".join(kept).strip())
    return Sources("\n".join(lines) + ("\n" if lines else ""),
                   "\n\n".join(stanzas) + ("\n" if stanzas else ""))


def _deb822_fields(lines: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in lines:
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def apt_options(dump: str) -> list[str]:
    """The lines of ``apt-config dump`` about fetching (proxies, validity of snapshot mirrors)."""
    return [line.strip() for line in dump.splitlines() if APT_KEYS.search(line.strip())]


def mmdebstrap_argv(release: Release, *, arch: str, sources: Sequence[str],
                    apt_opts: Sequence[str], output: str) -> list[str]:
    """A minimal Debian with python3 as a tarball: the Essential set, no apt, no docs."""
    argv = ["mmdebstrap", "--variant=essential", f"--architectures={arch}",
            f"--include={','.join(BASE_PACKAGES)}", "--format=tar",
            f"--hook-dir={MERGED_USR_HOOK}",
            "--aptopt=Acquire::Languages \"none\";"]
    argv += [f"--aptopt={opt}" for opt in apt_opts]
    argv += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    argv += [f"--dpkgopt=path-include={p}" for p in DPKG_KEEP]
    passwd, group = NONROOT_USER
    argv.append(f"--customize-hook=echo '{passwd}' >> \"$1/etc/passwd\" && "
                f"echo '{group}' >> \"$1/etc/group\" && mkdir -p \"$1/home/nonroot\" && "
                f"chown {USER} \"$1/home/nonroot\"")
    return [*argv, release.codename, output, *sources]


def image_requirements(dependencies: Sequence[str]) -> list[str]:
    """pyproject's dependencies less :data:`LEFT_OUT`; names compared as pip does."""
    def name(requirement: str) -> str:
        return re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    return [r for r in dependencies if name(r) not in LEFT_OUT]


def import_changes(source: str) -> list[str]:
    """``docker import --change`` lines: what a Dockerfile would say about the base."""
    return [f"LABEL {SOURCE_LABEL}={source}", "ENV LANG=C.UTF-8",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["python3"]']


def wheel_platforms(release: Release, *, machine: str) -> list[str]:
    """pip's ``--platform`` values for wheels that run on ``release``'s C library.

    pip widens only the legacy manylinux2014 tag by itself; every manylinux_2_N up to the
    release's glibc is named here.
    """
    major, minor = release.glibc
    return [*(f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)),
            f"manylinux2014_{machine}"]


def pip_target_flags(release: Release, *, machine: str) -> list[str]:
    """Wheels for the image's interpreter, whatever Python runs pip on the host."""
    flags = ["--only-binary=:all:", f"--python-version={release.python}",
             "--implementation=cp", f"--abi=cp{release.python.replace('.', '')}"]
    for platform in wheel_platforms(release, machine=machine):
        flags.append(f"--platform={platform}")
    return flags


def digest(*parts: bytes | str) -> str:
    """A short, stable digest of the inputs an image is built from."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:16]
