"""Development twin: writes each email as an .eml file instead of sending it.

Failures on demand: a recipient at `transient.invalid` fails like a provider
that refuses connections, one at `reject.invalid` like a refused message. Whether a
message was accepted is answered from the outbox folder, at once (a file is
renamed into place before `send` returns).
"""

from __future__ import annotations

import os
import time
from email import charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from pathlib import Path

from integrations.email.base import OutgoingEmail
from integrations.errors import PermanentError, TransientError

UTF8 = charset.Charset("utf-8")
UTF8.body_encoding = charset.QP  # readable .eml files, as EmailMessage writes them


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
        # The compat32 MIME classes build the same multipart/alternative message as EmailMessage's
        # set_content/add_alternative at about a fifth of the CPU (its header policy machinery is what costs).
        msg = MIMEMultipart("alternative")
        msg["From"] = email.sender
        msg["To"] = email.to
        msg["Subject"] = email.subject if email.subject.isascii() else Header(email.subject, "utf-8")
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=email.message_id, domain="sandbox.localhost")
        msg["X-Shop-Message-Id"] = email.message_id
        msg.attach(MIMEText(email.text, "plain", UTF8))
        msg.attach(MIMEText(email.html, "html", UTF8))
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{email.message_id}.eml"
        tmp = self.outbox_dir / f".{name}.tmp"
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, self.outbox_dir / name)  # readers never see half a file
        return msg["Message-ID"]

    def find_accepted(self, message_id: str) -> str | None:
        for path in sorted(self.outbox_dir.glob(f"*-{message_id}.eml")):
            with path.open("rb") as file:
                return BytesHeaderParser().parse(file)["Message-ID"]
        return None
