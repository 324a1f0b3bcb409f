"""The daily identity purge: old security events and dead sessions go, the rest stays."""

from sqlalchemy import text

from models.security.retention import purge_identity_data
from scheduler import beat_schedule
from tests.identity.conftest import login, rows


def test_old_events_and_dead_sessions_are_deleted(client, user_of, db, settings):
    user = user_of()
    login(client, user.email)
    login(client, user.email)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE security_events SET created_at = now() - interval '400 days' "
                          "WHERE id = (SELECT min(id) FROM security_events)"))
        conn.execute(text("UPDATE auth_sessions SET created_at = now() - interval '8 days' "
                          "WHERE id = (SELECT id FROM auth_sessions ORDER BY created_at LIMIT 1)"))
    assert purge_identity_data(db, 365, settings.REFRESH_TOKEN_TTL) == {"security_events": 1, "auth_sessions": 1}
    assert rows(db, "SELECT count(*) FROM security_events") == [(1,)]
    assert rows(db, "SELECT count(*) FROM auth_sessions") == [(1,)]
    assert rows(db, "SELECT count(*) FROM refresh_tokens") == [(1,)]


def test_beat_runs_it_daily(settings):
    assert beat_schedule(settings)["identity-purge"]["task"] == "tasks.maintenance.purge_identity_data"
