"""The files that describe how to run the project stay consistent with the code."""

import re
from dataclasses import fields
from pathlib import Path

import yaml

import celeryconfig
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_compose_has_every_process_with_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    expected = {"postgres", "rabbitmq", "redis", "elasticsearch", "web", "worker", "beat", "flower", "realtime"}
    assert expected <= set(services)
    for name in expected:
        assert "healthcheck" in services[name], name


def test_compose_gives_the_app_only_real_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {field.name for field in fields(Settings)}
    app_services = [s for s in compose["services"].values() if "build" in s]
    assert len(app_services) == 6  # migrate, web, worker, beat, flower, realtime
    for service in app_services:
        assert set(service["environment"]) <= known


def test_worker_everywhere_consumes_every_queue():
    procfile = (ROOT / "Procfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    queues = ",".join(celeryconfig.QUEUES)
    assert f"-Q {queues}" in procfile and queues in compose


def test_readme_documents_every_environment_variable_with_its_default():
    for field in fields(Settings):
        row = re.search(rf"^\| `{field.name}` \| (.*?) \|", README, re.MULTILINE)
        assert row, f"{field.name} is not in the README's table"
        assert str(field.default) in row.group(1) or (field.default == "" and "empty" in row.group(1)), field.name


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
