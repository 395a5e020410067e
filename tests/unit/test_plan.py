"""plan(): the Docker twin's diff, pure and fast. No Docker engine is touched here."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile_lab import parsing, spec
from reconcile_lab.imperative import containers, plan, steps


def webapp(name: str = "web", /, **fields: Any) -> spec.WebApp:
    body: dict[str, Any] = {"image": "reconcile-lab/hello:v1", "replicas": 3}
    body.update(fields)
    return parsing.parse_document({"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                "metadata": {"name": name}, "spec": body})


def running(app: spec.WebApp, **changes: Any) -> list[containers.Observed]:
    """The containers ``app`` leads to once they all run and are ready."""
    return [containers.as_observed(c)._replace(**changes) for c in containers.desired(app)]


def kinds(todo: list[steps.Step]) -> list[tuple[str, str]]:
    return [(type(s).__name__, s.target) for s in todo]


# --- the shape of a plan ----------------------------------------------------------------------


def test_from_nothing_creates_the_network_then_every_replica_then_waits() -> None:
    todo = plan.plan(webapp(), [])
    assert kinds(todo) == [("CreateNetwork", "web"), ("Create", "web-1"), ("Create", "web-2"),
                            ("Create", "web-3"), ("WaitReady", "web-1, web-2, web-3")]


def test_a_second_plan_changes_nothing() -> None:
    app = webapp(healthCheck={"path": "/healthz"})
    assert plan.plan(app, running(app), network_exists=True) == []


def test_scale_up_creates_only_the_missing_replicas() -> None:
    before, after = webapp(replicas=2), webapp(replicas=4)
    todo = plan.plan(after, running(before), network_exists=True)
    assert kinds(todo) == [("Create", "web-3"), ("Create", "web-4"),
                            ("WaitReady", "web-3, web-4")]


def test_scale_down_removes_the_highest_replicas_first() -> None:
    before, after = webapp(replicas=5), webapp(replicas=2)
    todo = plan.plan(after, running(before), network_exists=True)
    assert kinds(todo) == [("Remove", "web-5"), ("Remove", "web-4"), ("Remove", "web-3")]
    assert all("replicas is 2" in s.reason for s in todo)


def test_scale_to_zero_keeps_the_network_as_kubernetes_keeps_the_service() -> None:
    todo = plan.plan(webapp(replicas=0), running(webapp(replicas=2)), network_exists=True)
    assert kinds(todo) == [("Remove", "web-2"), ("Remove", "web-1")]


def test_an_image_change_replaces_one_at_a_time_each_ready_before_the_next() -> None:
    before, after = webapp(), webapp(image="reconcile-lab/hello:v2")
    todo = plan.plan(after, running(before), network_exists=True)
    assert kinds(todo) == [
        ("Replace", "web-1"), ("WaitReady", "web-1"),
        ("Replace", "web-2"), ("WaitReady", "web-2"),
        ("Replace", "web-3"), ("WaitReady", "web-3"),
    ]
    replace = todo[0]
    assert isinstance(replace, steps.Replace) and replace.rolling and not replace.drift
    assert replace.reason == "image reconcile-lab/hello:v1 → reconcile-lab/hello:v2"


def test_new_capacity_is_ready_before_a_rollout_takes_any_away() -> None:
    before, after = webapp(replicas=2), webapp(replicas=3, image="reconcile-lab/hello:v2")
    todo = plan.plan(after, running(before), network_exists=True)
    assert kinds(todo) == [
        ("Create", "web-3"), ("WaitReady", "web-3"),
        ("Replace", "web-1"), ("WaitReady", "web-1"),
        ("Replace", "web-2"), ("WaitReady", "web-2"),
    ]


def test_an_env_change_replaces_and_names_the_variable() -> None:
    before = webapp(replicas=1, env=[{"name": "GREETING", "value": "hi"}])
    after = webapp(replicas=1, env=[{"name": "GREETING", "value": "ho"}])
    (replace, wait) = plan.plan(after, running(before), network_exists=True)
    assert isinstance(replace, steps.Replace) and isinstance(wait, steps.WaitReady)
    assert replace.reason == "env GREETING changed"
    assert replace.container.env == (("GREETING", "ho"),)


def test_a_removed_env_variable_is_seen_by_the_config_hash() -> None:
    before = webapp(replicas=1, env=[{"name": "GREETING", "value": "hi"}])
    (replace, _) = plan.plan(webapp(replicas=1), running(before), network_exists=True)
    assert isinstance(replace, steps.Replace)
    assert replace.reason.startswith("configuration ")


@pytest.mark.parametrize(("change", "reason"), [
    ({"port": 9090}, "port 8080 → 9090"),
    ({"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}},
     "cpus 0.2 → 0.5; memory 64m → 128m"),
])
def test_port_and_resource_changes_replace(change: dict[str, Any], reason: str) -> None:
    (replace, _) = plan.plan(webapp(replicas=1, **change), running(webapp(replicas=1)),
                             network_exists=True)
    assert isinstance(replace, steps.Replace) and replace.reason == reason


def test_docker_update_behind_our_back_is_drift_and_is_replaced() -> None:
    app = webapp(replicas=1)
    seen = running(app, nano_cpus=10**9)
    (replace, _) = plan.plan(app, seen, network_exists=True)
    assert isinstance(replace, steps.Replace)
    assert replace.drift and replace.reason == "cpus 1 → 0.2"


# --- the world changed, the spec did not ------------------------------------------------------


def test_a_killed_container_is_started_again_not_recreated() -> None:
    app = webapp(replicas=2)
    seen = running(app)
    seen[0] = seen[0]._replace(status="exited", exit_code=137)
    todo = plan.plan(app, seen, network_exists=True)
    assert kinds(todo) == [("Start", "web-1"), ("WaitReady", "web-1")]
    assert todo[0].drift and todo[0].reason == "exited with code 137"


def test_a_container_the_engine_could_not_start_is_replaced_not_started_again() -> None:
    app = webapp(replicas=2)
    seen = running(app)
    # What `docker start` leaves after a dockerd restart when runc still holds the id.
    seen[0] = seen[0]._replace(status="exited", exit_code=plan.START_FAILED)
    todo = plan.plan(app, seen, network_exists=True)
    assert kinds(todo) == [("Replace", "web-1"), ("WaitReady", "web-1")]
    assert todo[0].drift and "could not start it" in todo[0].reason


def test_an_unhealthy_container_is_restarted_as_a_liveness_probe_would() -> None:
    app = webapp(replicas=1, healthCheck={})
    todo = plan.plan(app, running(app, health="unhealthy"), network_exists=True)
    assert kinds(todo) == [("Restart", "web-1"), ("WaitReady", "web-1")]


def test_a_starting_container_is_only_waited_for() -> None:
    app = webapp(replicas=1, healthCheck={})
    todo = plan.plan(app, running(app, health="starting"), network_exists=True)
    assert kinds(todo) == [("WaitReady", "web-1")]


def test_a_stale_container_that_serves_nothing_is_replaced_without_a_gate() -> None:
    before, after = webapp(replicas=2), webapp(replicas=2, image="reconcile-lab/hello:v2")
    seen = running(before)
    seen[1] = seen[1]._replace(status="exited")
    todo = plan.plan(after, seen, network_exists=True)
    assert kinds(todo) == [("Replace", "web-2"), ("WaitReady", "web-2"),
                            ("Replace", "web-1"), ("WaitReady", "web-1")]
    first, second = todo[0], todo[2]
    assert isinstance(first, steps.Replace) and not first.rolling
    assert isinstance(second, steps.Replace) and second.rolling


def test_strays_labelled_for_the_app_are_removed() -> None:
    app = webapp(replicas=1)
    stray = containers.Observed(name="web-copy", replica=None, image="reconcile-lab/hello:v1")
    todo = plan.plan(app, [*running(app), stray], network_exists=True)
    assert kinds(todo) == [("Remove", "web-copy")]
    assert todo[0].drift


def test_a_container_not_on_the_network_is_replaced() -> None:
    app = webapp(replicas=1)
    (replace, _) = plan.plan(app, running(app, networks=()), network_exists=True)
    assert isinstance(replace, steps.Replace) and replace.reason == "not on network web"


def test_delete_removes_containers_highest_first_then_the_network() -> None:
    todo = plan.plan_delete("web", running(webapp()), network_exists=True)
    assert kinds(todo) == [("Remove", "web-3"), ("Remove", "web-2"), ("Remove", "web-1"),
                            ("RemoveNetwork", "web")]
    assert plan.plan_delete("web", [], network_exists=False) == []


# --- the docker commands it prints ------------------------------------------------------------


def test_create_formats_as_the_exact_docker_run() -> None:
    app = webapp(replicas=1, env=[{"name": "GREETING", "value": "hi there"}],
                 healthCheck={"path": "/healthz", "periodSeconds": 2})
    create = plan.plan(app, [], network_exists=True)[0]
    config = containers.container(app, 1).config
    assert create.format() == (
        "docker run -d --name web-1 --network web --network-alias web"
        " --label reconcile-lab/app=web --label reconcile-lab/namespace=default"
        " --label reconcile-lab/replica=1"
        f" --label reconcile-lab/config={config}"
        " -p 127.0.0.1::8080 --user 65532:65532 --read-only --cap-drop ALL"
        " --security-opt no-new-privileges --cpus 0.2 --memory 64m -e 'GREETING=***'"
        " --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/healthz'"
        " --health-interval 2s --health-timeout 1s --health-retries 3"
        " reconcile-lab/hello:v1"
    )


def test_without_a_health_check_the_images_own_is_switched_off() -> None:
    args = containers.container(webapp(), 1).run_args()
    assert "--no-healthcheck" in args and "--health-cmd" not in args


def test_the_other_steps_format_as_docker_commands() -> None:
    app = webapp(replicas=1, healthCheck={})
    assert steps.CreateNetwork("web").format() == (
        "docker network create --label reconcile-lab/app=web"
        " --label reconcile-lab/namespace=default web")
    assert steps.Remove("web-2").format() == "docker rm -f web-2"
    assert steps.Start("web-1").format() == "docker start web-1"
    assert steps.RemoveNetwork("web").format() == "docker network rm web"
    replace = steps.Replace(containers.container(app, 1), reason="x")
    assert replace.format().splitlines()[0] == "docker rm -f web-1"
    assert replace.format().splitlines()[1].startswith("docker run -d --name web-1 ")
    assert steps.WaitReady(("web-1",), healthcheck=True).format() == (
        "until [ \"$(docker inspect -f '{{.State.Health.Status}}' web-1)\" = healthy ];"
        " do sleep 1; done")


@pytest.mark.parametrize(("limits", "cpus", "memory"), [
    ({"cpu": "250m", "memory": "1Gi"}, "0.25", "1g"),
    ({"cpu": "2", "memory": "1536Ki"}, "2", "1536k"),
    ({"cpu": "0.5", "memory": "100M"}, "0.5", "100000000"),
])
def test_limits_are_said_in_docker_units(limits: dict[str, str], cpus: str, memory: str) -> None:
    args = containers.container(webapp(resources={"limits": limits}), 1).run_args()
    assert args[args.index("--cpus") + 1] == cpus
    assert args[args.index("--memory") + 1] == memory


def test_without_limits_no_limit_flags() -> None:
    args = containers.container(webapp(resources={}), 1).run_args()
    assert "--cpus" not in args and "--memory" not in args


def test_the_config_hash_ignores_name_replica_and_env_order() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    one = containers.container(webapp(env=env), 1)
    other = containers.container(webapp("other", env=env[::-1]), 2)
    assert one.config == other.config
    assert one.config != containers.container(webapp(image="reconcile-lab/hello:v2"), 1).config


# --- properties: a fake Docker that does exactly what each step says -------------------------


def simulate(app: spec.WebApp, world: dict[str, containers.Observed],
             todo: list[steps.Step]) -> tuple[dict[str, containers.Observed], int]:
    """Run ``todo`` against ``world``; return it and the fewest replicas ready at any point."""
    wanted = {c.name: c for c in containers.desired(app)}
    healthy = "healthy" if app.spec.healthCheck else "none"
    world = dict(world)

    def ready() -> int:
        return sum(1 for name, c in world.items() if name in wanted and c.ready)

    fewest = ready()
    for step in todo:
        match step:
            case steps.Create(container=c) | steps.Replace(container=c):
                world[c.name] = containers.as_observed(c, health="starting")
            case steps.Start(name=name) | steps.Restart(name=name):
                world[name] = world[name]._replace(status="running", health="starting")
            case steps.Remove(name=name):
                del world[name]
            case steps.WaitReady(names=names):
                for name in names:
                    world[name] = world[name]._replace(health=healthy)
        fewest = min(fewest, ready())
    return world, fewest


apps = st.builds(
    lambda replicas, image, greeting, health: webapp(
        replicas=replicas, image=f"reconcile-lab/hello:{image}",
        env=[{"name": "GREETING", "value": greeting}] if greeting else [],
        **({"healthCheck": {}} if health else {})),
    st.integers(0, 4), st.sampled_from(["v1", "v2"]), st.sampled_from(["", "hi", "ho"]),
    st.booleans())
states = st.sampled_from([("running", "ready"), ("running", "starting"),
                          ("running", "unhealthy"), ("exited", "none"), ("created", "none"),
                          ("paused", "none"), ("dead", "none")])


@settings(max_examples=60, deadline=None)
@given(app=apps, before=apps, present=st.lists(st.booleans(), min_size=5, max_size=5),
       state=st.lists(states, min_size=5, max_size=5), network=st.booleans())
def test_executing_a_plan_leaves_nothing_to_do(
        app: spec.WebApp, before: spec.WebApp, present: list[bool],
        state: list[tuple[str, str]], network: bool) -> None:
    world: dict[str, containers.Observed] = {}
    for replica in range(1, 6):
        if present[replica - 1]:
            old = containers.container(before, replica)
            status, health = state[replica - 1]
            ready = "healthy" if old.health else "none"
            world[old.name] = containers.as_observed(
                old, status=status, health=ready if health == "ready" else health)
    todo = plan.plan(app, list(world.values()), network_exists=network)
    after, _ = simulate(app, world, todo)
    assert plan.plan(app, list(after.values()), network_exists=True) == []


@settings(max_examples=40, deadline=None)
@given(replicas=st.integers(1, 5), extra=st.integers(0, 2), health=st.booleans())
def test_a_rollout_never_drops_below_n_minus_1_ready(replicas: int, extra: int,
                                                     health: bool) -> None:
    checks: dict[str, Any] = {"healthCheck": {}} if health else {}
    before = webapp(replicas=replicas, **checks)
    after = webapp(replicas=replicas + extra, image="reconcile-lab/hello:v2", **checks)
    world = {c.name: c for c in running(before)}
    todo = plan.plan(after, list(world.values()), network_exists=True)
    _, fewest = simulate(after, world, todo)
    assert fewest >= replicas - 1


def test_the_namespace_is_part_of_every_docker_name_outside_the_default_one() -> None:
    def in_ns(namespace: str | None) -> spec.WebApp:
        meta = {"name": "web", **({"namespace": namespace} if namespace else {})}
        return parsing.parse_document({"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                    "metadata": meta, "spec": {"image": "reconcile-lab/hello:v1",
                                                               "replicas": 1}})

    default, explicit, shop = in_ns(None), in_ns("default"), in_ns("shop")
    assert [c.name for c in containers.desired(default)] == ["web-1"]  # as before namespaces
    assert containers.desired(explicit) == containers.desired(default)
    (mine,) = containers.desired(shop)
    assert (mine.name, mine.network, mine.app) == ("web.shop-1", "web.shop", "web")
    assert mine.labels[containers.LABEL_NAMESPACE] == "shop"
    assert "--network-alias web" in " ".join(mine.run_args())  # the short name, as in-namespace
    todo = plan.plan(shop, [])
    assert kinds(todo)[:2] == [("CreateNetwork", "web.shop"), ("Create", "web.shop-1")]
    # A default-namespace container of the same app name is not one of its replicas.
    stray = containers.as_observed(containers.desired(default)[0])
    assert ("Remove", "web-1") in kinds(plan.plan(shop, [stray], network_exists=True))
    assert plan.plan_delete("web", [], network_exists=True, namespace="shop")[0].format() == (
        "docker network rm web.shop")


@given(st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True),
       st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True),
       st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True),
       st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True))
@settings(max_examples=300)
def test_two_apps_never_share_a_docker_name(app1: str, ns1: str, app2: str, ns2: str) -> None:
    if (app1, ns1) != (app2, ns2):
        assert containers.docker_name(app1, ns1) != containers.docker_name(app2, ns2)
