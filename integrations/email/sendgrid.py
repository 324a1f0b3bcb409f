"""SendGrid v3 Mail Send through the official `sendgrid` library."""

from __future__ import annotations

from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from integrations.email.base import OutgoingEmail
from integrations.errors import PermanentError, TransientError

# Statuses worth another try; every other 4xx means the request itself is wrong.
RETRYABLE = {408, 429}


class SendGridEmailProvider:
    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com", timeout: float = 10.0):
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        self.client.client.timeout = timeout

    def send(self, email: OutgoingEmail) -> str | None:
        mail = Mail(from_email=email.sender, to_emails=email.to, subject=email.subject,
                    plain_text_content=email.text, html_content=email.html)
        mail.custom_arg = CustomArg("shop_message_id", email.message_id)
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            detail = f"SendGrid answered {exc.status_code}: {exc.body[:500]!r}"
            if exc.status_code >= 500 or exc.status_code in RETRYABLE:
                raise TransientError(detail) from None
            raise PermanentError(detail) from None
        except (URLError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"SendGrid unreachable: {exc}") from None
        return response.headers.get("X-Message-Id")
