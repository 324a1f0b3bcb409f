"""The Procfile's workers start as `make run` starts them: each line run as written, through a shell, from the
project's folder with the virtual environment's bin first on PATH (as honcho does), until Celery says ready."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.helpers import Process

ROOT = Path(__file__).resolve().parent.parent.parent
PROCFILE = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
WORKERS = [name for name, command in PROCFILE.items() if " worker " in f" {command} "]


def test_the_procfile_has_its_three_workers():
    assert WORKERS == ["orders", "worker", "indexer"]


@pytest.mark.parametrize("name", WORKERS)
def test_a_procfile_worker_starts_as_written(name, tmp_path):
    # A custom pool is imported before Celery puts the working directory on sys.path: the `celery` script
    # found it missing ("No module named 'tasks'") where `python -m celery` did not.
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "WORKER_METRICS_PORT": "0"}
    command = PROCFILE[name].replace("WORKER_METRICS_PORT=", "IGNORED_METRICS_PORT=")  # no port of the machine's
    worker = Process(["sh", "-c", f"exec {command}"], tmp_path / "worker.log", env=env, ready="ready.")
    try:
        worker.start()
        assert worker.proc.poll() is None
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()
