"""An import job's view measures its running time in UTC, whatever the server's local time zone."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from web.imports.routes import _view


def test_a_running_jobs_duration_does_not_depend_on_the_local_time_zone(app, monkeypatch):
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local clock would add fourteen hours
    time.tzset()
    try:
        started = datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC, like every column
        job = SimpleNamespace(id=uuid.uuid4(), status="running", format="csv", filename="f.csv", inbox=None,
                              policy="upsert", message=None, rows_total=10, rows_imported=4, rows_failed=0,
                              created_at=started, started_at=started, finished_at=None)
        with app.test_request_context(), app.extensions["shop"].db.session() as session:
            view = _view(session, job)
        assert 0 <= view["duration_seconds"] < 60
        assert view["progress"] == 0.4
    finally:
        monkeypatch.undo()
        time.tzset()
