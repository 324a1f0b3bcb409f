"""Development twin: writes each email as an .eml file instead of sending it.

Failures on demand: a recipient at `transient.invalid` fails like a provider
that refuses connections, one at `reject.invalid` like a refused message. Whether a
message was accepted is answered from the outbox folder, at once (a file is
renamed into place before `send` returns).
"""

from __future__ import annotations

import os
import time
import uuid
from email import charset
from email.header import Header
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from pathlib import Path

from integrations.email.base import OutgoingEmail
from integrations.errors import PermanentError, TransientError

UTF8 = charset.Charset("utf-8")
UTF8.body_encoding = charset.QP  # readable .eml files, as EmailMessage writes them


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def eml(email: OutgoingEmail, message_id: str) -> bytes:
    """The multipart/alternative message (text and HTML, UTF-8, quoted-printable) as the compat32 MIME classes
    write it, written directly: their generator (header folding, a boundary checked against the bodies with a
    regular expression compiled per message) cost the sandbox more CPU than the rest of a send."""
    boundary = f"==============={uuid.uuid4().hex}=="
    parts = ["Content-Type: multipart/alternative;", f' boundary="{boundary}"', "MIME-Version: 1.0",
             f"From: {_header(email.sender)}", f"To: {_header(email.to)}", f"Subject: {_header(email.subject)}",
             f"Date: {formatdate(localtime=False)}", f"Message-ID: {message_id}",
             f"X-Shop-Message-Id: {email.message_id}", ""]
    for subtype, body in (("plain", email.text), ("html", email.html)):
        parts += [f"--{boundary}", f'Content-Type: text/{subtype}; charset="utf-8"', "MIME-Version: 1.0",
                  "Content-Transfer-Encoding: quoted-printable", "", UTF8.body_encode(body)]
    parts += [f"--{boundary}--", ""]
    return "\n".join(parts).encode("ascii")


class SandboxEmailProvider:
    def __init__(self, outbox_dir: Path, latency: float = 0.0):
        self.outbox_dir = Path(outbox_dir)
        self.latency = latency

    def send(self, email: OutgoingEmail) -> str:
        domain = email.to.rpartition("@")[2].lower()
        if domain == "transient.invalid":
            raise TransientError("sandbox: simulated provider outage", refused=True)
        if domain == "reject.invalid":
            raise PermanentError("sandbox: simulated rejected recipient", refused=True)
        if self.latency:
            time.sleep(self.latency)  # a vendor round trip, for crash tests
        message_id = make_msgid(idstring=email.message_id, domain="sandbox.localhost")
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{email.message_id}.eml"
        tmp = self.outbox_dir / f".{name}.tmp"
        tmp.write_bytes(eml(email, message_id))
        os.replace(tmp, self.outbox_dir / name)  # readers never see half a file
        return message_id

    def find_accepted(self, message_id: str) -> str | None:
        for path in sorted(self.outbox_dir.glob(f"*-{message_id}.eml")):
            with path.open("rb") as file:
                return BytesHeaderParser().parse(file)["Message-ID"]
        return None
