"""The email templates render with what their tasks give them: templates only, no services."""

import pytest

pytestmark = pytest.mark.pure


def test_the_lockout_emails_render():
    from tasks.emails import render

    subject, body, html = render("account_locked", {"minutes": 15})
    assert "locked" in subject and "15 minutes" in body and "15 minutes" in html
    subject, body, html = render("security_alert", {"event": "lockout", "account": "j***@example.com",
                                                    "ip": "10.0.0.1", "minutes": 15})
    assert subject == "Security alert: lockout" and "j***@example.com" in body and "10.0.0.1" in html
