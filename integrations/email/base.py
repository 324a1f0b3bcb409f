"""The email interface: one message in, the provider's message id out."""

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
        """Send one email; raise TransientError or PermanentError on failure."""
