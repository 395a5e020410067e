"""The fault proxy's decisions (switchboard) and the kubeconfig that goes through it."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

import pytest

from reconcile_lab.faults import kubeconfigs, switchboard
from reconcile_lab.faults.switchboard import Mode


def test_in_pass_every_connection_forwards() -> None:
    board = switchboard.Switchboard()
    assert board.admit(1) and board.admit(2)
    assert board.may_forward(1) and board.may_forward(2)


def test_a_cut_resets_every_open_connection_and_refuses_new_ones() -> None:
    board = switchboard.Switchboard()
    board.admit(1)
    board.admit(2)
    change = board.switch(Mode.CUT)
    assert change.reset == {1, 2}
    assert not board.may_forward(1)
    assert not board.admit(3)
    assert board.status() == {"mode": "cut", "open": 0, "stalled": 0, "reset_total": 2,
                              "refused_total": 1, "stalled_total": 0, "last_stall": None}
    board.switch(Mode.FORWARD)
    assert board.admit(4) and board.may_forward(4)


def test_a_stall_silences_the_open_connections_and_lets_new_ones_pass() -> None:
    board = switchboard.Switchboard()
    board.admit(1)
    change = board.switch(Mode.STALL)
    assert change == switchboard.Change(frozenset(), frozenset())
    assert not board.may_forward(1)
    assert board.admit(2) and board.may_forward(2)  # opened after the stall
    assert board.status()["stalled"] == 1
    healed = board.switch(Mode.FORWARD)
    assert healed.released == {1}
    assert board.may_forward(1)


def test_a_cut_during_a_stall_resets_the_stalled_ones_too() -> None:
    board = switchboard.Switchboard()
    board.admit(1)
    board.switch(Mode.STALL)
    assert board.switch(Mode.CUT).reset == {1}
    assert board.switch(Mode.FORWARD).released == frozenset()


def test_a_closed_connection_is_forgotten() -> None:
    board = switchboard.Switchboard()
    board.admit(1)
    board.switch(Mode.STALL)
    board.closed(1)
    assert board.status()["open"] == 0 and board.status()["stalled"] == 0


@pytest.mark.parametrize(("line", "mode"), [("cut\n", Mode.CUT), (" STALL ", Mode.STALL),
                                            ("heal", Mode.FORWARD), ("pass", Mode.FORWARD),
                                            ("status\n", None)])
def test_control_requests(line: str, mode: Mode | None) -> None:
    assert switchboard.parse_request(line) is mode


def test_an_unknown_control_request_names_the_known_ones() -> None:
    with pytest.raises(switchboard.ControlError, match="one of: heal, pass, cut, stall, status"):
        switchboard.parse_request("explode")


def test_the_reply_is_one_line_of_json_and_reads_as_a_sentence() -> None:
    status = switchboard.Switchboard().status()
    reply = switchboard.format_reply(status)
    assert reply.endswith("\n") and reply.count("\n") == 1 and json.loads(reply) == status
    assert switchboard.format_status(status) == (
        "pass: 0 open, 0 stalled; 0 reset, 0 refused, 0 stalled since start")


def _config(server: str = "https://127.0.0.1:32766", **user: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "kit",
            "contexts": [{"name": "other", "context": {"cluster": "far", "user": "u"}},
                         {"name": "kit", "context": {"cluster": "kit", "user": "admin"}}],
            "clusters": [{"name": "far", "cluster": {"server": "https://10.0.0.1:6443"}},
                         {"name": "kit", "cluster": {"server": server,
                                                     "certificate-authority": "pki/ca.crt"}}],
            "users": [{"name": "admin", "user": user}]}


def test_the_kubeconfig_through_the_proxy_changes_only_the_port_and_relative_paths() -> None:
    config = _config(**{"client-certificate": "pki/admin.crt", "client-key": "/abs/admin.key"})
    out = kubeconfigs.through(config, port=40000, base=PurePath("/state/kwok"))
    kit = next(c["cluster"] for c in out["clusters"] if c["name"] == "kit")
    assert kit == {"server": "https://127.0.0.1:40000",
                   "certificate-authority": "/state/kwok/pki/ca.crt"}
    assert out["users"][0]["user"] == {"client-certificate": "/state/kwok/pki/admin.crt",
                                       "client-key": "/abs/admin.key"}
    assert out["clusters"][0] == config["clusters"][0]  # another context's cluster: untouched
    assert config["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:32766"  # a copy


def test_a_token_kubeconfig_keeps_the_cluster_and_drops_the_admins_credentials() -> None:
    config = _config(**{"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"})
    out = kubeconfigs.with_token(config, token="t0k3n", base=PurePath("/state/kwok"),
                                 user="compare-operator")
    assert out["clusters"] == [{"name": "cluster", "cluster": {
        "server": "https://127.0.0.1:32766", "certificate-authority": "/state/kwok/pki/ca.crt"}}]
    assert out["users"] == [{"name": "compare-operator", "user": {"token": "t0k3n"}}]
    assert kubeconfigs.upstream(out) == ("127.0.0.1", 32766)  # and the proxy can stand before it


def test_the_upstream_is_the_current_contexts_server() -> None:
    assert kubeconfigs.upstream(_config(token="t")) == ("127.0.0.1", 32766)
    assert kubeconfigs.upstream(_config("https://localhost")) == ("localhost", 443)


@pytest.mark.parametrize("server", ["https://10.0.0.1:6443", "http://127.0.0.1:8080", ""])
def test_only_an_apiserver_on_loopback_over_https_is_proxied(server: str) -> None:
    with pytest.raises(kubeconfigs.KubeconfigError, match="only stands between"):
        kubeconfigs.through(_config(server), port=1, base=PurePath("/"), where="my.kubeconfig")


def test_a_kubeconfig_without_a_usable_context_says_so() -> None:
    with pytest.raises(kubeconfigs.KubeconfigError, match=r"my\.kubeconfig: no current context"):
        kubeconfigs.upstream({"contexts": []}, where="my.kubeconfig")


def test_a_stall_is_counted_and_dated_once_while_it_lasts() -> None:
    board = switchboard.Switchboard()
    board.admit(1)
    board.switch(Mode.STALL, at=100.0)
    board.admit(2)
    board.switch(Mode.STALL, at=150.0)  # again: 2 goes silent too, the stall began at 100
    assert board.status()["stalled_total"] == 2 and board.status()["last_stall"] == 100.0
    board.switch(Mode.FORWARD, at=200.0)
    assert board.status()["stalled"] == 0 and board.status()["stalled_total"] == 2
    board.switch(Mode.STALL, at=300.0)
    assert board.status()["last_stall"] == 300.0
