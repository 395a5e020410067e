"""`docker apply --watch` reports an error the engine answers with and keeps watching.

The real Engine adapter over a stand-in Docker client that answers with the errors a real engine
gives (a 500, a container removed between list and inspect, a 409); the clock is the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import yaml

from reconcile_lab import parsing, spec
from reconcile_lab.imperative import containers, engine, watching

APP = {"apiVersion": spec.API_VERSION, "kind": spec.KIND, "metadata": {"name": "web"},
       "spec": {"image": "reconcile-lab/hello:v1", "replicas": 1}}


def attrs(want: containers.Container) -> dict[str, Any]:
    """The inspect JSON of a running container made from ``want``."""
    return {"Id": "c0ffee", "Name": f"/{want.name}",
            "Config": {"Image": want.image, "Labels": want.labels,
                       "Env": [f"{k}={v}" for k, v in want.env]},
            "HostConfig": {"PortBindings": {f"{want.port}/tcp": [{}]},
                           "NanoCpus": want.nano_cpus, "Memory": want.memory},
            "State": {"Status": "running"},
            "NetworkSettings": {"Networks": {want.network: {}}}}


class Model:
    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        self.name, self.attrs = name, attrs


class Collection:
    def __init__(self, answers: Iterator[Any]) -> None:
        self.answers = answers

    def list(self, **_: Any) -> Any:
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Client:
    """Only what observe() calls: a plan that has nothing to do runs no step."""

    def __init__(self, answers: list[Any], app: spec.WebApp) -> None:
        (want,) = containers.desired(app)
        steady = [Model(want.name, attrs(want))]
        self.containers = Collection(iter(c if c is not None else steady for c in answers))
        network = Model(want.network, {"Labels": {containers.LABEL_APP: want.app}})
        self.networks = Collection(iter(lambda: [network], None))

    def close(self) -> None:
        pass


def api_error(status: int, message: str, cls: type[Exception] = docker.errors.APIError) -> Any:
    class Response:
        status_code = status
        reason = "error"
        url = "http+docker://localhost/containers/json"

    return cls(message, response=Response(), explanation=message)  # type: ignore[call-arg]


@pytest.fixture
def watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path / "state"))
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(APP))
    app = parsing.parse_document(APP)

    def run(*answers: Any, polls: int) -> list[float]:
        # Each poll observes twice when it has nothing to do (before and after): None is an
        # answer in sync, an exception is what the engine answers instead.
        client = Client(list(answers), app)
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == polls:
                raise KeyboardInterrupt

        monkeypatch.setattr(watching.time, "sleep", sleep)
        watching.watch([str(path)], [app], interval=1.0, timeout=None,
                       connect=lambda: engine.Engine(client, socket="/fake.sock"))
        return slept

    return run


def test_engine_errors_are_reported_and_the_watch_goes_on_with_a_bounded_backoff(
        watch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    slept = watch(api_error(500, "server error: boom"),
                  api_error(404, "No such container: c0ffee", docker.errors.NotFound),
                  api_error(409, "removal of container c0ffee is already in progress"),
                  *[api_error(500, "still broken")] * 5,
                  None, None, polls=9)
    assert slept == [1, 2, 4, 8, 16, 30, 30, 30, 1]  # doubled, capped, reset once it answers
    err = capsys.readouterr().err
    assert "answered with an error: 500 server error: boom; retrying in 1s" in err
    assert "404 No such container: c0ffee; retrying in 2s" in err
    assert "409 removal of container c0ffee is already in progress" in err


def test_backoff_is_the_interval_without_errors_and_never_below_it() -> None:
    assert watching.backoff(2.0, 0) == 2.0
    assert watching.backoff(45.0, 3) == 45.0  # an interval longer than the cap stays
    assert watching.backoff(0.5, 100) == watching.MAX_BACKOFF
