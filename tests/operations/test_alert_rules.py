"""The Prometheus alert rules: valid for promtool, each alert unit-tested (fires past its threshold and not
before) and explained in the runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.pure

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
ALERTS = [rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
          if "alert" in rule]
CASES = {case["name"]: case for case in yaml.safe_load(TESTS.read_text())["tests"]}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make system-packages` installs Debian's prometheus package")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_has_tests_and_a_runbook_section():
    assert sorted(CASES) == sorted(ALERTS)
    runbook = (ROOT / "docs" / "operations.md").read_text()
    headings = {re.sub(r"[^a-z0-9]", "", line.lower()) for line in runbook.splitlines() if line.startswith("### ")}
    assert {name.lower() for name in ALERTS} <= headings
    for name in ALERTS:
        case = CASES[name]
        checks = [check for check in case["alert_rule_test"] if check["alertname"] == name]
        assert any(check["exp_alerts"] for check in checks), f"{name}: no case where it fires"
        assert any(not check["exp_alerts"] for check in checks), f"{name}: no case where it stays quiet"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert(alert, tmp_path):
    shutil.copy(RULES, tmp_path / RULES.name)
    # Evaluate as often as the case's samples come (every minute for alerts with a `for`, days for the drill).
    (tmp_path / "one.test.yml").write_text(yaml.safe_dump({
        "rule_files": [RULES.name], "evaluation_interval": CASES[alert]["interval"], "tests": [CASES[alert]]}))
    result = promtool("test", "rules", "one.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
