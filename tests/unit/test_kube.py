"""What the API adapter reads from an apiserver's answer."""

from __future__ import annotations

from reconcile_lab.declarative import kube


def test_retry_after_is_read_in_seconds_and_nonsense_is_ignored() -> None:
    assert kube.retry_after({"Retry-After": "3"}) == 3.0
    assert kube.retry_after({"retry-after": "0.5"}) == 0.5
    assert kube.retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert kube.retry_after(None) is None and kube.retry_after({}) is None
