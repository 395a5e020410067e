from __future__ import annotations

import datetime

from reconcile_lab.declarative import peers

NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _seen(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).isoformat()


def test_only_live_peers_of_the_same_priority_count() -> None:
    status = {
        "a": {"priority": 100, "lifetime": 10, "lastseen": _seen(2)},  # live, same
        "b": {"priority": 200, "lifetime": 10, "lastseen": _seen(2)},  # live, higher
        "c": {"priority": 100, "lifetime": 10, "lastseen": _seen(30)},  # dead
        "d": {"priority": 100, "lifetime": 60, "lastseen": _seen(30)},  # live: longer lifetime
        "e": "not a record",
        "f": {"priority": 100},  # no lastseen: unreadable, ignored
    }
    assert peers.same_priority(status, 100, now=NOW) == ["a", "d"]
    assert peers.same_priority(status, 100, now=NOW, me="a") == ["d"]
    assert peers.same_priority(status, 300, now=NOW) == []
    assert peers.same_priority(None, 100, now=NOW) == []


def test_a_timestamp_without_a_zone_is_utc() -> None:
    status = {"a": {"priority": 1, "lifetime": 10, "lastseen": "2026-12-01T11:59:58"}}
    assert peers.same_priority(status, 1, now=NOW) == ["a"]
