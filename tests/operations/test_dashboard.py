"""The Grafana dashboard and the Prometheus configuration docker-compose.yml provisions: every query
parses (promtool), names metrics that something exports, and every file compose mounts exists."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import ROOT
from tests.operations.test_alert_rules import promtool

pytestmark = pytest.mark.pure

DEPLOY = ROOT / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "shop.json").read_text())
QUERIES = [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]
# Exported by the backups work (their names are agreed; the code lives elsewhere).
OTHERS = {"shop_backup_last_good_age_seconds", "shop_wal_archive_lag_seconds", "shop_backup_job_failures_total",
          "shop_backup_drill_last_success_timestamp_seconds"}
METRIC = re.compile(r"\b((?:shop|http|outbox|vendor)_[a-z_]+)\b")


def test_every_query_parses(tmp_path):
    assert len(QUERIES) >= 20
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": query} for i, query in enumerate(QUERIES)]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_is_exported_by_our_code_or_the_backups():
    code = "".join(path.read_text() for folder in ("web", "tasks", "integrations")
                   for path in (ROOT / folder).rglob("*.py"))
    used = {name for query in QUERIES for name in METRIC.findall(query)}
    for name in used - OTHERS:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f'"{base}"' in code or f'"{base.removesuffix("_total")}"' in code, f"nothing exports {name}"


def test_panels_use_the_provisioned_datasource_and_cover_each_area():
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in DASHBOARD["panels"] if p["type"] == "timeseries"} == {uid}
    rows = [p["title"] for p in DASHBOARD["panels"] if p["type"] == "row"]
    assert rows == ["API", "Queues", "Tasks", "Outbox and vendors", "Imports", "Backups", "Security"]


def test_prometheus_config_is_valid_and_compose_mounts_what_exists():
    result = promtool("check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert "python" in services["flower"]["command"] and "tasks.flower" in services["flower"]["command"]
