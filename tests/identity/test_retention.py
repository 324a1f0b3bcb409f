"""The security log is kept a year and dead sessions not at all (now two of the retention purges)."""

from sqlalchemy import text

from models.retention.purges import Periods, purge
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
    periods = Periods.from_settings(settings)
    assert purge(db, periods, "security_events").removed == 1
    assert purge(db, periods, "auth_sessions").removed == 1
    assert rows(db, "SELECT count(*) FROM security_events WHERE kind = 'login'") == [(1,)]
    assert rows(db, "SELECT count(*) FROM auth_sessions") == [(1,)]
    assert rows(db, "SELECT count(*) FROM refresh_tokens") == [(1,)]
