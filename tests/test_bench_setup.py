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


def test_interleaved_with_the_thread_clock_leaves_out_other_threads_work():
    """A background thread's CPU (an outbox publisher after a checkout) falls on whichever call runs meanwhile:
    the process clock charges it to that call, the thread clock does not."""
    import threading
    import time

    from bench.stack import interleaved

    def busy(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def waits_while_another_thread_works() -> None:
        worker = threading.Thread(target=busy, args=(0.004,))
        worker.start()
        worker.join()

    calls = {"waits": waits_while_another_thread_works}
    process = interleaved(calls, rounds=20)["waits"][1]
    thread = interleaved(calls, rounds=20, clock=time.thread_time)["waits"][1]
    assert process >= 3_000
    assert thread < 1_000
