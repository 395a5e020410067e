"""The work queue between kopf's event handlers and the reconcile workers."""

from __future__ import annotations

import asyncio

from reconcile_lab.declarative.workqueue import WorkQueue


def test_a_key_waits_once_however_many_events_arrive() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue[str]()
        added = [queue.add(k) for k in ("a", "b", "a", "a", "b")]
        assert added == [True, True, False, False, False]
        assert len(queue) == 2
        taken = []
        for _ in range(2):
            key, waited = await queue.get()
            assert waited >= 0
            taken.append(key)
            queue.done(key)
        assert len(queue) == 0
        return taken

    assert asyncio.run(scenario()) == ["a", "b"]  # first in, first out


def test_a_key_is_never_processed_twice_at_once_and_an_add_meanwhile_is_not_lost() -> None:
    async def scenario() -> list[tuple[str, str]]:
        queue = WorkQueue[str]()
        log: list[tuple[str, str]] = []

        async def worker(name: str) -> None:
            while True:
                key, _ = await queue.get()
                log.append((name, f"start {key}"))
                await asyncio.sleep(0.02)
                log.append((name, f"end {key}"))
                queue.done(key)

        workers = [asyncio.create_task(worker(n)) for n in ("w1", "w2")]
        queue.add("a")
        await asyncio.sleep(0.005)  # w1 is processing "a"
        queue.add("a")  # changed again meanwhile: must not start on w2 now
        await asyncio.sleep(0.1)
        for w in workers:
            w.cancel()
        return log

    log = asyncio.run(scenario())
    events = [what for _, what in log]
    assert events == ["start a", "end a", "start a", "end a"]



def test_what_changed_goes_before_what_a_list_merely_reported() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue[str]()
        for key in ("old-1", "old-2", "old-3"):
            queue.add(key, listed=True)  # the start-up relist
        queue.add("new")  # created just after the start
        assert not queue.add("old-3")  # changed while it waits as listed: to the front lane
        assert not queue.add("new", listed=True)  # a list never demotes a change
        taken = []
        for _ in range(4):
            key, _ = await queue.get()
            taken.append(key)
            queue.done(key)
        assert len(queue) == 0
        return taken

    assert asyncio.run(scenario()) == ["new", "old-3", "old-1", "old-2"]


def test_a_key_listed_while_it_is_processed_comes_back_in_its_lane() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue[str]()
        queue.add("a")
        key, _ = await queue.get()
        queue.add("a", listed=True)  # reported again while processed: waits
        queue.add("b")
        queue.done(key)  # "a" goes back, behind "b" (fresh)
        taken = []
        for _ in range(2):
            k, _ = await queue.get()
            taken.append(k)
            queue.done(k)
        return taken

    assert asyncio.run(scenario()) == ["b", "a"]
