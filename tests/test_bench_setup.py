"""The benchmarks' shared set-up builds a database from nothing in a fresh process, as a benchmark starts."""

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tests.conftest import PG_SERVER, TEST_DB, _drop_database
from web.cli import alembic_config

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = f"{TEST_DB}_bench"


def test_fresh_database_migrates_in_a_process_nothing_has_bootstrapped(settings):
    """A benchmark process has no PII key ring until something builds it, yet migration 0002 encrypts with one."""
    url = f"{PG_SERVER}/{SCRATCH}"
    script = ("import sys; from bench.stack import fresh_database; "
              "fresh_database(sys.argv[1], sys.argv[2], sys.argv[3])")
    try:
        run = subprocess.run([sys.executable, "-c", script, PG_SERVER, SCRATCH, url], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        engine = create_engine(url)
        with engine.connect() as conn:
            version = conn.scalar(text("SELECT version_num FROM alembic_version"))
        engine.dispose()
        assert version == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    finally:
        _drop_database(SCRATCH)
