"""The SendGrid twin and a worker sending through it, shared with the SendGrid tests (the dead-letter tests ask
for them; the other operations modules start no twin)."""

from tests.integrations.test_sendgrid import sendgrid_worker, twin  # noqa: F401
