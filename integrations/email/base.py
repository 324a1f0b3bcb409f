"""The email interface: one message in, the provider's message id out; and asking whether it got one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str


class EmailProvider(Protocol):
    def send(self, email: OutgoingEmail) -> str | None:
        """Send one email; raise TransientError or PermanentError on failure.

        The error's `refused` is True only when the provider answered that it
        did not accept the message.
        """

    def find_accepted(self, message_id: str) -> str | None:
        """The provider's id of the email it accepted with our `message_id`, or None if it has none.

        Raise TransientError when the provider cannot tell now. A provider may
        show an accepted message only after a delay (its activity feed's lag):
        None means "not accepted" only once that delay has passed.
        """
