"""The operator image's recipes: which apt sources, which wheels, which mmdebstrap call (pure)."""

from __future__ import annotations

from reconcile_lab.cluster import imagerecipes
from reconcile_lab.cluster.imagerecipes import RELEASES

BOOKWORM = RELEASES["bookworm"]

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://third-party.example/node
Suites: nodistro
Components: main

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-backports
Enabled: no
"""

ONE_LINE = """\
deb [ arch=amd64 signed-by=/usr/share/keyrings/debian.gpg ] http://mirror.example/debian bookworm main
deb http://mirror.example/debian trixie main
deb https://third-party.example/apt cloud-sdk-bookworm main
# deb http://mirror.example/debian bookworm-backports main
deb-src http://mirror.example/debian bookworm main
"""


def test_only_the_releases_own_binary_sources_are_kept() -> None:
    sources = imagerecipes.release_sources(
        [("debian.sources", DEB822), ("extra.list", ONE_LINE), ("other.txt", ONE_LINE)],
        "bookworm")
    assert sources.one_line.splitlines() == [ONE_LINE.splitlines()[0]]
    stanzas = sources.deb822.split("\n\n")
    assert len(stanzas) == 2
    assert "Suites: bookworm bookworm-updates" in stanzas[0]
    assert "debian-security" in stanzas[1] and "# a comment" not in stanzas[1]
    assert "third-party" not in sources.deb822 + sources.one_line
    assert not sources.empty()


def test_a_host_of_another_release_has_no_sources_for_the_base() -> None:
    assert imagerecipes.release_sources([("debian.sources", DEB822)], "trixie").empty()


def test_the_hosts_fetching_settings_are_passed_on_and_nothing_else() -> None:
    dump = ('APT "";\nAcquire::http::Proxy "http://proxy.example:3128";\n'
            'Acquire::Check-Valid-Until "false";\nAcquire::Languages "none";\n'
            'Dir::Cache "var/cache/apt/";\n')
    assert imagerecipes.apt_options(dump) == ['Acquire::http::Proxy "http://proxy.example:3128";',
                                              'Acquire::Check-Valid-Until "false";']


def test_wheels_are_asked_for_the_images_python_and_c_library() -> None:
    flags = imagerecipes.pip_target_flags(BOOKWORM, machine="x86_64")
    assert "--python-version=3.11" in flags and "--abi=cp311" in flags
    assert "--only-binary=:all:" in flags
    platforms = [f.split("=", 1)[1] for f in flags if f.startswith("--platform=")]
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in platforms and "manylinux2014_x86_64" in platforms
    assert "manylinux_2_37_x86_64" not in platforms  # newer than bookworm's glibc


def test_the_image_leaves_matplotlib_out_and_keeps_the_rest() -> None:
    deps = ["kopf==1.45.2", "Matplotlib==3.11.2", "pyyaml==6.0.3", "matplotlib-inline>=0.1"]
    assert imagerecipes.image_requirements(deps) == ["kopf==1.45.2", "pyyaml==6.0.3",
                                                     "matplotlib-inline>=0.1"]


def test_the_base_is_minimal_merged_usr_and_knows_the_nonroot_user() -> None:
    argv = imagerecipes.mmdebstrap_argv(BOOKWORM, arch="amd64", sources=["/s/host.sources"],
                                        apt_opts=['Acquire::Retries "3";'], output="/t/rootfs.tar")
    assert argv[0] == "mmdebstrap" and argv[-3:] == ["bookworm", "/t/rootfs.tar", "/s/host.sources"]
    assert "--variant=essential" in argv and "--include=python3" in argv
    assert f"--hook-dir={imagerecipes.MERGED_USR_HOOK}" in argv
    assert '--aptopt=Acquire::Retries "3";' in argv
    (hook,) = [a for a in argv if a.startswith("--customize-hook=")]
    assert ":65532:65532:" in hook and "/etc/passwd" in hook
    assert any(a == "--dpkgopt=path-exclude=/usr/share/doc/*" for a in argv)


def test_digests_change_with_any_input_and_only_then() -> None:
    assert imagerecipes.digest("a", b"b") == imagerecipes.digest("a", b"b")
    assert imagerecipes.digest("a", b"b") != imagerecipes.digest("ab", b"")
    assert imagerecipes.base_tag(BOOKWORM) == "reconcile-lab/base:bookworm-python3.11"
    changes = imagerecipes.import_changes("abc")
    assert f"LABEL {imagerecipes.SOURCE_LABEL}=abc" in changes
