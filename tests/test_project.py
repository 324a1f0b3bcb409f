"""The files that describe how to run the project stay consistent with the code."""

import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

import celeryconfig
from models.backups import jobs
from settings import Settings

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_compose_has_every_process_with_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    expected = {"postgres", "rabbitmq", "redis", "elasticsearch", "web", "orders", "worker", "beat", "flower",
                "realtime"}
    assert expected <= set(services)
    for name in expected:
        assert "healthcheck" in services[name], name


def test_compose_gives_the_app_only_real_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {field.name for field in fields(Settings)}
    app_services = [s for s in compose["services"].values() if s.get("image") == "shop-backend"]
    assert len(app_services) == 9  # migrate, backups-setup, web, orders, worker, indexer, beat, flower, realtime
    for service in app_services:
        assert set(service["environment"]) <= known


def test_the_workers_consume_every_queue_and_the_orders_worker_runs_its_tasks_in_threads():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for commands in ({name: command.split() for name, command in procfile.items()},
                     {name: service.get("command") or [] for name, service in services.items()}):
        consumed = {queue for command in commands.values() if "worker" in command and "-Q" in command
                    for queue in command[command.index("-Q") + 1].split(",")}
        assert consumed == set(celeryconfig.QUEUES)
        orders = commands["orders"]
        assert orders[orders.index("-Q") + 1].split(",") == ["payments", "emails", "shipping"]
        assert orders[orders.index("--pool") + 1] == "custom"
        assert "CELERY_CUSTOM_WORKER_POOL=tasks.pools:ThreadPool" in orders
        # the rest keeps processes: imports parse in them, and backups' time limits need them
        assert "--pool" not in commands["worker"]


def test_readme_documents_every_environment_variable_with_its_default():
    for field in fields(Settings):
        row = re.search(rf"^\| `{field.name}` \| (.*?) \|", README, re.MULTILINE)
        assert row, f"{field.name} is not in the README's table"
        assert str(field.default) in row.group(1) or (field.default == "" and "empty" in row.group(1)), field.name


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _postgres_options(service) -> dict[str, str]:
    command = service["command"]
    assert command[0] == "postgres"
    options = {}
    for flag, option in zip(command[1::2], command[2::2], strict=True):
        assert flag == "-c"
        name, value = option.split("=", 1)
        options[name] = value
    return options


def test_compose_archives_wal_into_the_repository_the_worker_backs_up(monkeypatch):
    services = _compose()["services"]
    postgres, worker = services["postgres"], services["worker"]
    options = _postgres_options(postgres)
    assert options["archive_mode"] == "on" and options["wal_level"] in ("replica", "logical")
    assert 0 < int(options["archive_timeout"]) <= 60
    # The server runs the very archive_command the worker's settings make (same config file, same stanza).
    monkeypatch.setattr(jobs.PgBackRest, "write_config", lambda self: None)
    settings = Settings.from_env({k: str(v) for k, v in worker["environment"].items()})
    tool = jobs.make_tool(settings)
    assert options["archive_command"] == tool.archive_command()
    # The worker consumes maintenance (where the backup tasks go) and reaches what pgBackRest reads.
    assert "maintenance" in " ".join(worker["command"])
    assert worker["user"].split(":")[0] == "999"  # the postgres image's uid, owner of the data folder
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in worker["volumes"]}
    server_mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in postgres["volumes"]}
    assert mounts[settings.BACKUP_PG_DATA] == server_mounts["/var/lib/postgresql/data"]
    assert mounts[settings.BACKUP_PG_SOCKET_DIR] == server_mounts["/var/run/postgresql"]
    work = str(tool.config_path.parent)
    assert mounts[work] == server_mounts[work]
    assert Path(tool.repo.path).is_relative_to(work)  # a POSIX repository on the shared volume
    # The configuration exists before the worker starts.
    assert worker["depends_on"]["backups-setup"] == {"condition": "service_completed_successfully"}
    setup = services["backups-setup"]
    assert setup["command"][-2:] == ["backups", "setup"] and setup["environment"] == worker["environment"]


def test_compose_postgres_image_is_the_major_version_the_app_image_restores_with():
    services = _compose()["services"]
    postgres_dockerfile = (ROOT / services["postgres"]["build"] / "Dockerfile").read_text()
    app_dockerfile = (ROOT / "Dockerfile").read_text()
    major = re.search(r"^FROM postgres:(\d+)", postgres_dockerfile, re.MULTILINE).group(1)
    assert f"postgresql-{major}" in app_dockerfile and "pgbackrest" in app_dockerfile
    assert services["worker"]["environment"]["BACKUP_PG_BINDIR"] == f"/usr/lib/postgresql/{major}/bin"
    assert "pgbackrest" in postgres_dockerfile
    # Both install pgBackRest from the same Debian release, so the pushing and backing-up versions agree.
    release = re.search(r"^FROM python:[\d.]+-slim-(\w+)", app_dockerfile, re.MULTILINE).group(1)
    assert re.search(rf"^FROM postgres:{major}-{release}$", postgres_dockerfile, re.MULTILINE)
    assert f"-t {release} pgbackrest" in postgres_dockerfile


@pytest.mark.parametrize("name", ["docker-compose.yml"])
def test_compose_refers_only_to_files_and_volumes_that_exist(name):
    compose = yaml.safe_load((ROOT / name).read_text())
    declared = set(compose["volumes"])
    used = set()
    for service_name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build["context"])
            assert (context / "Dockerfile").is_file(), service_name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{service_name}: {source}"
            else:
                used.add(source)
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], f"{service_name} waits for unknown {dependency}"
    assert used == declared
