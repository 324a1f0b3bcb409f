"""The SendGrid twin and a worker sending through it, shared with the SendGrid tests."""

from tests.integrations.test_sendgrid import reset_twin, sendgrid_worker, twin  # noqa: F401
