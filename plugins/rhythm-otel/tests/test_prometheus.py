"""A real Prometheus server scrapes a worker's Prometheus endpoint; the shipped alert rules and
Grafana dashboard are checked against what it scraped."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from rhythm_core.testing import scenario
from rhythm_core.testing.processes import free_port

from .prometheus import ROOT, Prometheus, promtool

GRAFANA = ROOT / "docs" / "grafana"
ALERTS = GRAFANA / "rhythm-alerts.yml"
DASHBOARD = GRAFANA / "rhythm-dashboard.json"
P99 = ("histogram_quantile(0.99, sum by (le) "
       "(rate(rhythm_execution_duration_seconds_bucket[30s])))")


def _names(expression: str) -> set[str]:
    return set(re.findall(r"\brhythm_[a-z_]+", expression))


def _alert_expressions() -> list[str]:
    # the rules file is YAML; its expressions are the `expr:` blocks
    text = ALERTS.read_text()
    blocks = re.findall(r"expr: (?:\|\n((?:\s{10}.*\n)+)|(.*)\n)", text)
    return [(block or line).strip() for block, line in blocks]


def _dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"].replace("$__rate_interval", "1m").replace("$queue", ".*")
            for panel in panels for t in panel["targets"]]


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout
    tested = promtool("test", "rules", str(GRAFANA / "rhythm-alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture
def scraped(rhythm_worker_process: Any, rhythm_db: Any, tmp_path: Path) -> Any:
    """A worker serving /metrics, and Prometheus scraping it every second with our rules."""
    port = free_port()
    rhythm_worker_process({
        "RHYTHM_OBSERVABILITY_PROVIDER": "otel",
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_INTERVAL": "1",
        "RHYTHM_PROMETHEUS_PORT": str(port),
    })
    server = Prometheus(tmp_path, [f"127.0.0.1:{port}"], [ALERTS])
    yield server
    server.stop()


def test_prometheus_scrapes_and_answers_p99(scraped: Prometheus) -> None:
    expressions = _alert_expressions() + _dashboard_expressions()
    assert len(_alert_expressions()) == 4
    wanted = set().union(*(_names(e) for e in expressions))
    deadline = time.monotonic() + 90
    p99, names = math.nan, set()
    scenario.unserved.queue()  # waiting, for the queue-depth gauge
    # rate() needs two scrapes with executions finishing between, and the database gauges
    # come once per metrics interval: keep work flowing until both are there
    while math.isnan(p99) or not wanted <= names:
        assert time.monotonic() < deadline, (p99, sorted(wanted - names))
        scenario.noop.queue_many([()] * 20)
        scenario.flaky_always.queue_many([(n,) for n in range(2)])
        scenario.slow.queue(1.5)  # running when the gauges are read
        time.sleep(1)
        result = scraped.api("query", query=P99)["result"]
        p99 = float(result[0]["value"][1]) if result else math.nan
        names = set(scraped.api("label/__name__/values"))
    assert 0 < p99 < 60  # seconds: no-op tasks, finished within the test
    # every metric the rules and the dashboard name is one the endpoint really exposes
    for expression in expressions:
        assert _names(expression) and _names(expression) <= names, expression
    for expression in _dashboard_expressions():  # and every panel's query runs
        scraped.api("query", query=expression)
    failed = scraped.api("query", query='sum(rhythm_executions_completed_total{status="failed"})')
    assert failed["result"], "no failed executions were scraped"

    # Prometheus loaded the rules and evaluates them without errors
    deadline = time.monotonic() + 30
    while True:
        rules = [r for g in scraped.api("rules")["groups"] for r in g["rules"]]
        if rules and all(r["health"] == "ok" for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert {r["name"] for r in rules} == {
        "RhythmQueueGrowing", "RhythmHighErrorRate", "RhythmNoActiveWorkers",
        "RhythmP99LatencyHigh",
    }
