"""What the API adapter reads from an apiserver's answer."""

from __future__ import annotations

import copy

from reconcile_lab.declarative import diffing, kube, render
from tests.unit.test_render import OWNER, _spec


def test_retry_after_is_read_in_seconds_and_nonsense_is_ignored() -> None:
    assert kube.retry_after({"Retry-After": "3"}) == 3.0
    assert kube.retry_after({"retry-after": "0.5"}) == 0.5
    assert kube.retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert kube.retry_after(None) is None and kube.retry_after({}) is None


def test_a_listed_child_carries_its_kind_as_a_watched_one_does_so_it_is_not_drift() -> None:
    desired = render.deployment(OWNER, _spec())
    listed = {k: v for k, v in copy.deepcopy(desired).items() if k not in ("apiVersion", "kind")}
    page = {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {},
            "items": [listed]}
    assert diffing.drift(desired, listed) != []  # as a LIST answers it: apiVersion, kind gone
    (typed,) = kube.typed(page)
    assert diffing.drift(desired, typed) == []
    assert list(kube.typed({"items": [listed]})) == [listed]  # nothing to add it from
