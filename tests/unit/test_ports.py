"""Each server's port moves with one variable, and a bad value is refused with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconcile_lab import ports
from reconcile_lab.observe import dashboards

ROOT = Path(__file__).resolve().parents[2]


def test_a_port_is_its_default_unless_its_variable_moves_it() -> None:
    assert ports.TWIN_METRICS.get({}) == 8001
    assert ports.TWIN_METRICS.get({"RECONCILE_LAB_TWIN_METRICS_PORT": " "}) == 8001
    assert ports.TWIN_METRICS.get({"RECONCILE_LAB_TWIN_METRICS_PORT": "18001"}) == 18001
    assert ports.url(ports.PROMETHEUS, "/api", {"RECONCILE_LAB_PROMETHEUS_PORT": "19090"}) \
        == "http://127.0.0.1:19090/api"
    assert len({p.variable for p in ports.ALL}) == len({p.default for p in ports.ALL}) == 4


@pytest.mark.parametrize("value", ["abc", "-1", "70000", "80.0"])
def test_a_value_that_is_not_a_port_is_refused_naming_the_variable_and_the_fix(value: str) -> None:
    with pytest.raises(ports.BadPort) as e:
        ports.PROMETHEUS.get({"RECONCILE_LAB_PROMETHEUS_PORT": value})
    assert "RECONCILE_LAB_PROMETHEUS_PORT" in str(e.value) and "unset" in str(e.value)


def test_the_generated_scrape_config_with_the_default_ports_is_the_committed_one() -> None:
    committed = yaml.safe_load((ROOT / dashboards.OBSERVABILITY / "prometheus" / "prometheus.yml")
                               .read_text())
    assert dashboards.local_scrape_config(ports.OPERATOR_METRICS.default,
                                          ports.TWIN_METRICS.default) == committed
