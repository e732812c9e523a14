"""The alert rules, scrape config and Grafana dashboard under deploy/ are valid and agree with the
code: promtool checks the rules and fires each alert from synthetic series, and every metric they
query is one the services define (or RabbitMQ's own), every metric we define is charted."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "mport-dashboard.json"
PROMTOOL = shutil.which("promtool")
# Where the services define their metrics (each module's import registers them).
METRICS_MODULES = ("mport_shared.metrics", "portal_api.metrics", "order_worker.metrics", "sms_worker.metrics")

# Metrics the rules and the dashboard read that are not ours: Prometheus' own `up`, and
# rabbitmq_prometheus' per-queue families from /metrics/detailed (deploy/prometheus/prometheus.yml).
EXTERNAL = {"up", "rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"}
_METRIC = re.compile(r"\b((?:mport|rabbitmq)_[a-z0-9_]+|up)\b(?!\s*\()")
_HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="no promtool (Debian: apt-get install prometheus); CI installs it",
)


def _defined() -> set[str]:
    """Every metric family the services define, counters with their _total."""
    for module in (
        "mport_shared.metrics",
        "portal_api.metrics",
        "order_worker.metrics",
        "sms_worker.metrics",
    ):
        importlib.import_module(module)  # each defines its metrics in the default registry
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("mport_")
    }


def _queried(expressions: list[str]) -> set[str]:
    names = set()
    for expression in expressions:
        for name in _METRIC.findall(re.sub(r'"[^"]*"', '""', expression)):  # not inside label values
            names.add(name)
    return names


def _family(series: str, defined: set[str]) -> str:
    for suffix in _HISTOGRAM_SERIES:
        if series.endswith(suffix) and series.removesuffix(suffix) in defined:
            return series.removesuffix(suffix)
    return series


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@needs_promtool
def test_the_alert_rules_and_scrape_config_pass_promtool() -> None:
    assert PROMTOOL is not None, "promtool is missing (apt-get install prometheus)"
    for command in (["check", "rules", "alerts.yaml"], ["check", "config", "prometheus.yml"]):
        checked = subprocess.run([PROMTOOL, *command], cwd=PROMETHEUS, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_each_alert_fires_from_synthetic_series_in_promtools_unit_tests() -> None:
    assert PROMTOOL is not None, "promtool is missing (apt-get install prometheus)"
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yaml"], cwd=PROMETHEUS, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    unit_tests = yaml.safe_load((PROMETHEUS / "alerts.test.yaml").read_text())["tests"]
    fired = {
        case["alertname"] for test in unit_tests for case in test["alert_rule_test"] if case["exp_alerts"]
    }
    assert fired == {rule["alert"] for rule in _rules()}


def test_every_alert_says_what_it_means_and_which_mport_ops_command_to_start_with() -> None:
    for rule in _rules():
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), rule["alert"]
        assert annotations.get("description"), rule["alert"]
        assert "mport-ops " in annotations.get("runbook", ""), rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), rule["alert"]


def test_the_rules_and_the_dashboard_query_only_metrics_that_exist_and_chart_every_one() -> None:
    defined = _defined()
    known = defined | EXTERNAL
    in_rules = {_family(name, defined) for name in _queried([rule["expr"] for rule in _rules()])}
    charted = {_family(name, defined) for name in _queried(_dashboard_expressions())}
    assert in_rules - known == set(), "alerts.yaml queries metrics nothing defines"
    assert charted - known == set(), "the dashboard queries metrics nothing defines"
    assert defined - charted == set(), "metrics the dashboard does not chart"


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_and_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["type"] == "prometheus", panel["title"]
