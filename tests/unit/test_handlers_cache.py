"""The operator's view of its children between a write and the watch catching up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconcile_lab.declarative import handlers

KEY = ("shop", "web")
SLOT = ("Deployment", *KEY)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    handlers._written.pop(SLOT, None)
    handlers._deleted.pop(SLOT, None)


def _deployment(version: int) -> dict[str, object]:
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": str(version)}}


def test_our_write_stands_in_until_the_watch_delivers_it() -> None:
    handlers._written[SLOT] = handlers._pack(_deployment(10))
    assert handlers._freshest("Deployment", KEY, _deployment(9)) == _deployment(10)
    assert handlers._freshest("Deployment", KEY, _deployment(11)) == _deployment(11)
    assert SLOT not in handlers._written


def test_a_write_whose_result_lands_after_the_reported_deletion_does_not_bring_it_back() -> None:
    handlers._written[SLOT] = handlers._pack(_deployment(10))
    handlers._deleted[SLOT] = 12  # the watch said: deleted, at revision 12
    assert handlers._freshest("Deployment", KEY, None) is None  # so the child is recreated
    assert SLOT not in handlers._written


def test_a_recreation_after_the_deletion_is_kept() -> None:
    handlers._deleted[SLOT] = 12
    handlers._written[SLOT] = handlers._pack(_deployment(13))
    assert handlers._freshest("Deployment", KEY, None) == _deployment(13)
    handlers._seen_by_watch("Deployment", KEY, handlers._pack(_deployment(13)))
    assert SLOT not in handlers._deleted and SLOT not in handlers._written
