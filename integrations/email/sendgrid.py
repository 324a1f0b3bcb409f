"""SendGrid v3 Mail Send, and the Email Activity API to ask what it accepted, through the `sendgrid` library."""

from __future__ import annotations

import json
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from integrations.email.base import OutgoingEmail
from integrations.errors import PermanentError, TransientError

# Statuses worth another try; every other 4xx means the request itself is wrong.
RETRYABLE = {408, 429}
# The custom argument every message carries; the Email Activity API calls custom args "unique_args".
MESSAGE_ID_ARG = "shop_message_id"


class SendGridEmailProvider:
    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com", timeout: float = 10.0):
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        self.client.client.timeout = timeout

    def send(self, email: OutgoingEmail) -> str | None:
        mail = Mail(from_email=email.sender, to_emails=email.to, subject=email.subject,
                    plain_text_content=email.text, html_content=email.html)
        mail.custom_arg = CustomArg(MESSAGE_ID_ARG, email.message_id)
        response = self._call("SendGrid", lambda: self.client.send(mail))
        return response.headers.get("X-Message-Id")

    def find_accepted(self, message_id: str) -> str | None:
        """Ask the Email Activity API (a paid add-on; the key needs "Email Activity" access).

        Its `msg_id` is the Mail Send answer's X-Message-Id followed by ".<server part>".
        """
        query = {"query": f"unique_args['{MESSAGE_ID_ARG}']=\"{message_id}\"", "limit": 10}
        response = self._call("SendGrid's Email Activity API",
                              lambda: self.client.client.messages.get(query_params=query))
        try:
            found = json.loads(response.body)["messages"]
            return found[0]["msg_id"].split(".", 1)[0] if found else None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise TransientError(f"SendGrid's Email Activity API answered something unexpected: {exc!r}") from None

    @staticmethod
    def _call(what: str, call):
        try:
            return call()
        except HTTPError as exc:
            detail = f"{what} answered {exc.status_code}: {exc.body[:500]!r}"
            # A 4xx is SendGrid's own "not accepted"; a 5xx may come from a gateway that gave up on a
            # request SendGrid went on to accept.
            refused = exc.status_code < 500
            if exc.status_code >= 500 or exc.status_code in RETRYABLE:
                raise TransientError(detail, refused=refused) from None
            raise PermanentError(detail, refused=refused) from None
        except URLError as exc:
            # Refused: the request never left. Anything else (a timeout, a reset) may have come after it did.
            refused = isinstance(exc.reason, ConnectionRefusedError)
            raise TransientError(f"{what} unreachable: {exc}", refused=refused) from None
        except (TimeoutError, ConnectionError) as exc:  # a reset or a silence after the request was sent
            raise TransientError(f"{what} unreachable: {exc!r}", refused=isinstance(exc, ConnectionRefusedError)) \
                from None
