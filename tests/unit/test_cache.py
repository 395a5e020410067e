"""The operator's view of its children between a write and the watch catching up."""

from __future__ import annotations

from reconcile_lab.declarative import cache

KEY = ("shop", "web")


def _deployment(version: int) -> dict[str, object]:
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": str(version)}}


def test_our_write_stands_in_until_the_watch_delivers_it() -> None:
    memory = cache.ReadYourWrites()
    memory.wrote("Deployment", KEY, _deployment(10))
    assert memory.freshest("Deployment", KEY, _deployment(9)) == _deployment(10)
    assert memory.freshest("Deployment", KEY, _deployment(11)) == _deployment(11)
    assert memory.freshest("Deployment", KEY, _deployment(9)) == _deployment(9)  # let go


def test_a_write_whose_result_lands_after_the_reported_deletion_does_not_bring_it_back() -> None:
    memory = cache.ReadYourWrites()
    memory.wrote("Deployment", KEY, _deployment(10))
    memory.deleted("Deployment", KEY, 12)  # the watch said: deleted, at revision 12
    assert memory.freshest("Deployment", KEY, None) is None  # so the child is recreated


def test_a_recreation_after_the_deletion_is_kept() -> None:
    memory = cache.ReadYourWrites()
    memory.deleted("Deployment", KEY, 12)
    memory.wrote("Deployment", KEY, _deployment(13))
    assert memory.freshest("Deployment", KEY, None) == _deployment(13)
    memory.seen("Deployment", KEY, cache.pack(_deployment(13)))
    assert memory.freshest("Deployment", KEY, None) is None  # the cache speaks again


def test_a_child_a_broken_watch_lost_is_not_trusted_until_a_newer_one_arrives() -> None:
    memory = cache.ReadYourWrites()
    memory.vanished("Service", KEY, 20)
    assert memory.is_vanished("Service", KEY)
    assert memory.freshest("Service", KEY, _deployment(20)) is None
    assert memory.freshest("Service", KEY, _deployment(21)) == _deployment(21)
    assert not memory.is_vanished("Service", KEY)


def test_only_the_very_version_we_wrote_is_our_echo() -> None:
    memory = cache.ReadYourWrites()
    memory.wrote("Deployment", KEY, _deployment(10))
    assert memory.is_echo("Deployment", KEY, 10)
    assert not memory.is_echo("Deployment", KEY, 11)  # someone else's change after ours
    assert not memory.is_echo("Service", KEY, 10)
    assert not memory.is_echo("Deployment", ("other", "web"), 10)


def test_forgetting_a_webapp_leaves_nothing_of_it() -> None:
    memory = cache.ReadYourWrites()
    other = ("shop", "other")
    for key in (KEY, other):
        memory.wrote("Deployment", key, _deployment(10))
        memory.wrote("WebApp", key, _deployment(11))
        memory.deleted("Service", key, 12)
        memory.vanished("Service", key, 9)
    before = len(memory)
    memory.forget(KEY)
    assert len(memory) == before // 2
    memory.forget(other)
    assert len(memory) == 0


def test_a_strangers_object_is_reduced_to_its_name_and_owners() -> None:
    body = {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5",
                         "ownerReferences": [{"kind": "Thing", "name": "x"}],
                         "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}},
                                           {"manager": "y", "subresource": "status",
                                            "fieldsV1": {"f:status": {}}}],
                         "labels": {"a": "b"}},
            "spec": {"big": "x" * 1000}}
    packed = cache.pack(body, owned=False)
    assert packed.unpack() == {"metadata": {"name": "web", "namespace": "shop",
                                            "ownerReferences": [{"kind": "Thing", "name": "x"}]}}
    # Of its own, what is set on the object itself (diffing.released reads ours); of status
    # entries, who and how.
    assert cache.pack(body).unpack()["metadata"]["managedFields"] == [
        {"manager": "x", "fieldsV1": {"f:spec": {}}},
        {"manager": "y", "operation": None, "subresource": "status"}]


def test_the_store_keeps_the_newest_of_what_the_list_and_the_watch_said() -> None:
    def packed(version: int) -> cache.Packed:
        return cache.pack({"metadata": {"name": "web", "namespace": "shop",
                                        "resourceVersion": str(version)}})

    store = cache.Store()
    store.put("Deployment", ("shop", "web"), packed(7))  # the start-up LIST
    store.put("Deployment", ("shop", "web"), packed(5))  # the watch's older listing, late
    held = store.get("Deployment", ("shop", "web"))
    assert held is not None and held.version == 7
    store.put("Deployment", ("shop", "web"), packed(9))
    assert (store.get("Deployment", ("shop", "web")) or packed(0)).version == 9
    store.put("WebApp", ("shop", "web"), packed(3))
    assert store.webapp_keys() == [("shop", "web")] and len(store) == 2
    store.drop("Deployment", ("shop", "web"))
    assert store.get("Deployment", ("shop", "web")) is None and len(store) == 1


def test_the_store_tells_what_it_held_unchanged_since_a_mark() -> None:
    def packed(version: int) -> cache.Packed:
        return cache.pack({"metadata": {"name": "web", "namespace": "shop",
                                        "resourceVersion": str(version)}})

    store, key = cache.Store(), ("shop", "web")
    store.put("Deployment", key, packed(7))
    mark = store.mark()
    assert store.unchanged_since("Deployment", key, mark)
    assert not store.unchanged_since("Service", key, mark)  # never held
    store.put("Deployment", key, packed(5))  # older: ignored, so still unchanged
    assert store.unchanged_since("Deployment", key, mark)
    store.put("Deployment", key, packed(9))
    assert not store.unchanged_since("Deployment", key, mark)
    assert store.unchanged_since("Deployment", key, store.mark())
    store.drop("Deployment", key)
    assert not store.unchanged_since("Deployment", key, store.mark())
