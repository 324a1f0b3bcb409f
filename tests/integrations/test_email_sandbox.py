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



def test_the_written_message_is_the_mime_message_the_email_package_reads(tmp_path):
    """Written directly, the .eml reads as what the compat32 MIME classes made of the same email: headers
    (non-ASCII ones encoded), both alternatives in quoted-printable UTF-8, long lines and trailing spaces kept."""
    import email as email_package
    import email.policy
    from email.header import Header
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    from integrations.email.sandbox import UTF8

    text = "Héllo Ada\nan = sign and a long line " + "x" * 120 + "\ntrailing spaces  \n"
    html = '<p>Hé</p>\n<a href="https://shop.test/#token=abc-DEF_1">verify</a>\n'
    sent = OutgoingEmail(message_id="m-9", sender="Shop <no-reply@shop.test>", to="adà@example.com",
                         subject="Your order ✓", text=text, html=html)
    provider_id = SandboxEmailProvider(tmp_path).send(sent)
    [path] = tmp_path.glob("*-m-9.eml")
    raw = path.read_bytes()
    assert max(len(line) for line in raw.splitlines()) <= 78  # folded, quoted-printable soft line breaks
    written = email_package.message_from_bytes(raw, policy=email.policy.default)
    before = MIMEMultipart("alternative")
    before["From"], before["To"], before["Subject"] = sent.sender, sent.to, Header(sent.subject, "utf-8")
    before.attach(MIMEText(text, "plain", UTF8))
    before.attach(MIMEText(html, "html", UTF8))
    expected = email_package.message_from_bytes(before.as_bytes(), policy=email.policy.default)
    for name in ("From", "To", "Subject", "MIME-Version"):
        assert written[name] == expected[name], name
    assert written["Subject"] == sent.subject
    assert written["Message-ID"] == provider_id and written["X-Shop-Message-Id"] == "m-9"
    assert written.get_content_type() == "multipart/alternative" and written["Date"].datetime is not None
    assert written.get_body(preferencelist=("plain",)).get_content() == text
    assert written.get_body(preferencelist=("html",)).get_content() == html
    assert [(part.get_content_type(), part["Content-Transfer-Encoding"], part.get_content_charset())
            for part in written.iter_parts()] == [
        (part.get_content_type(), part["Content-Transfer-Encoding"], part.get_content_charset())
        for part in expected.iter_parts()]
