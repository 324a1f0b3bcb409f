"""The dependency rule and the composition root hold: checked on the code itself, and on a real worker."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models import task_names

ROOT = Path(__file__).resolve().parent.parent
OURS = {"web", "models", "tasks", "imports", "integrations", "scheduler", "settings", "bootstrap", "celeryconfig",
        "logconfig", "wsgi"}


def imported(path: Path) -> set[str]:
    """Every module `path` imports (absolute names, at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, forbidden) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported(path):
            if forbidden(name.split(".")[0]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_web_imports_nothing_from_tasks():
    assert violations("web", lambda top: top == "tasks") == []


def test_models_import_neither_web_nor_tasks():
    assert violations("models", lambda top: top in ("web", "tasks")) == []


def test_integrations_import_nothing_of_ours():
    assert violations("integrations", lambda top: top in OURS - {"integrations"}) == []


def test_nothing_imports_web():
    for package in ("models", "tasks", "imports", "integrations", "scheduler"):
        assert violations(package, lambda top: top == "web") == [], package


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import settings
def refuse(*args, **kwargs):
    raise AssertionError("settings read at import time")
settings.get_settings = refuse
settings.Settings.from_env = classmethod(refuse)
skip = {"tasks.celery", "web.realtime.__main__"}  # entry points: they bootstrap
names = []
for package in ("models", "web", "tasks", "imports", "scheduler"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name not in skip:
            importlib.import_module(info.name)
            names.append(info.name)
from celery import signals
from models.emails import actions
hooks = {name: len(getattr(signals, name).receivers) for name in
         ("worker_init", "worker_process_init", "setup_logging", "task_prerun", "before_task_publish")}
print(json.dumps({"modules": len(names), "hooks": hooks, "prepares": sorted(actions._PREPARE)}))
"""


def test_importing_our_packages_reads_no_settings_and_wires_no_hook():
    """Every module under models/, web/, tasks/, imports/ and scheduler/ imports with settings unreadable,
    and leaves no Celery signal connected and no email hook registered: only bootstrap wires them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE", "CELERY", "REDIS"))}
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 100
    assert report["hooks"] == dict.fromkeys(report["hooks"], 0)
    assert report["prepares"] == []


def test_web_process_loads_no_task_module():
    result = subprocess.run([sys.executable, "-c", "import sys, wsgi; "
                             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tasks'))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_task_name_is_defined_and_every_definition_is_named(celery_app):
    import importlib

    for module in task_names.TASK_MODULES:
        importlib.import_module(module)
    ours = {name for name in celery_app.tasks if name.startswith("tasks.")}
    assert task_names.missing(celery_app.tasks) == []
    assert ours == task_names.all_names()


def test_the_beat_schedule_uses_only_named_tasks(settings):
    import celeryconfig

    assert {job["task"] for job in celeryconfig.config(settings)["beat_schedule"].values()} <= task_names.all_names()


def test_the_bootstrap_of_a_second_app_uses_its_own_settings(settings):
    """create_app(settings) controls what used to come from the environment (FULFILLMENT_EMAIL, say)."""
    from dataclasses import replace

    from models.orders import effects
    from web import create_app

    other = create_app(replace(settings, FULFILLMENT_EMAIL="packing@example.org",
                               TRACKING_URL="https://track.example.org/{tracking}"))
    try:
        assert effects._configured().fulfillment_email == "packing@example.org"
        assert effects._configured().tracking_url == "https://track.example.org/{tracking}"
        assert other.extensions["shop"].settings.FULFILLMENT_EMAIL == "packing@example.org"
    finally:
        other.extensions["shop"].close()
        create_app(settings).extensions["shop"].close()  # back to the suite's options


UNREGISTERED = """
import sys
from tasks.celery import app
app.conf.include = [m for m in app.conf.include if m != "tasks.backups"]
app.worker_main(["worker", "--pool", "solo", "--without-mingle", "--without-gossip"])
"""


@pytest.mark.parametrize("drop", ["tasks.backups"])
def test_a_worker_missing_a_named_task_refuses_to_start(drop, tmp_path):
    """A real worker whose task modules leave a name unregistered exits before consuming, naming the task."""
    script = UNREGISTERED.replace("tasks.backups", drop)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "worker refuses to start: no task registered for tasks.backups.check" in output, output[-3000:]
    assert "ready." not in output
