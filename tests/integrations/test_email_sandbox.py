"""The sandbox provider answers whether it accepted a message from its outbox folder."""

import pytest

from integrations.email.base import OutgoingEmail
from integrations.email.sandbox import SandboxEmailProvider
from integrations.errors import PermanentError, TransientError


def email(message_id, to="ada@example.com"):
    return OutgoingEmail(message_id=message_id, sender="Shop <no-reply@shop.test>", to=to, subject="Hello",
                         text="plain", html="<p>html</p>")


def test_a_written_message_is_found_by_our_id(tmp_path):
    sandbox = SandboxEmailProvider(tmp_path / "mail")
    assert sandbox.find_accepted("m-1") is None  # no folder yet
    provider_id = sandbox.send(email("m-1"))
    assert sandbox.find_accepted("m-1") == provider_id
    assert sandbox.find_accepted("m-2") is None


@pytest.mark.parametrize("to, error", [("x@transient.invalid", TransientError), ("x@reject.invalid", PermanentError)])
def test_simulated_failures_are_refusals_and_write_nothing(tmp_path, to, error):
    sandbox = SandboxEmailProvider(tmp_path)
    with pytest.raises(error) as raised:
        sandbox.send(email("m-1", to))
    assert raised.value.refused is True and sandbox.find_accepted("m-1") is None
