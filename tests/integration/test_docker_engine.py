"""The demo image runs on the real Docker engine, published on 127.0.0.1 only."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.conftest import wait_for

pytestmark = [pytest.mark.docker]


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_the_demo_image_answers_with_its_version(docker_engine: Any, tag: str) -> None:
    container = docker_engine.containers.run(
        f"reconcile-lab/hello:{tag}", detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
        read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        labels={"reconcile-lab/test": "engine"})
    try:
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        url = f"http://127.0.0.1:{binding['HostPort']}/"

        def answer() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    return dict(json.loads(r.read()))
            except OSError:
                return None

        body = wait_for(answer, timeout=20, what="the demo app to answer")
        assert body["version"] == tag
        assert body["hostname"] == container.attrs["Config"]["Hostname"]
        assert container.attrs["Config"]["User"] == "65532:65532"
    finally:
        container.remove(force=True)
