"""Helpers for tests that watch real processes and real mailboxes."""

from __future__ import annotations

import email
import functools
import email.policy
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds.

    The deadline only bounds a failure: it is generous (the machine may be busy), never a target.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Process:
    """A subprocess whose output goes to a log file, started once a line says it is ready."""

    def __init__(self, command: list[str], log_path: Path, env: dict | None = None, ready: str = ""):
        self.command = command
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.ready = ready
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if self.ready:
            try:
                wait_for(lambda: self.ready in self.log() or self.proc.poll() is not None, timeout,
                         message=f"{self.command[3:5]} to be ready")
            except AssertionError:
                self.stop()  # a process that never got ready must not live on to consume later runs' tasks
                raise
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self.command} exited early:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def mails(mail_dir: Path, to: str | None = None) -> list[email.message.EmailMessage]:
    """The .eml files in `mail_dir`, parsed, oldest first (optionally only those to `to`)."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to is None or message["To"] == to:
            found.append(message)
    return found


def wait_for_mail(mail_dir: Path, to: str, timeout: float = 30.0) -> email.message.EmailMessage:
    return wait_for(lambda: mails(mail_dir, to), timeout, message=f"an email to {to}")[0]


def token_from(message: email.message.EmailMessage) -> str:
    """The verification token in an email's text part."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"#token=([A-Za-z0-9_\-]+)", text).group(1)


def dead_letters(broker_url: str, queue: str) -> list[dict]:
    """Take every message from `queue` (a dead-letter queue) and return their headers."""
    from kombu import Connection

    taken = []
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            taken.append(dict(message.headers or {}))
    return taken


PASSWORD = "Passw0rd!Long"


@functools.lru_cache(maxsize=1)
def _password_hash() -> str:
    from models.users.passwords import hash_password
    return hash_password(PASSWORD)


def make_user(session, role: str = "customer", email: str | None = None, **fields):
    """A verified user with `role` and the password PASSWORD, flushed so it has an id."""
    from models.users.tables import User

    user = User(email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.com", password_hash=_password_hash(),
                first_name=fields.pop("first_name", "Test"), last_name=fields.pop("last_name", role.title()),
                role=role, **{"is_verified": True, **fields})
    session.add(user)
    session.flush()
    return user


def bearer(app, user, mfa: bool = True) -> dict:
    """Headers carrying an access token for `user`, as a login (with MFA when `mfa`) would issue it."""
    from web.auth.tokens import access_token

    with app.app_context():
        token = access_token(user.id, user.role, mfa=mfa, session_id=uuid.uuid4())
    return {"Authorization": f"Bearer {token}"}


class Statements:
    """Counts the SQL statements engines run inside the `with` block (`seen` holds their text).

    Only this thread's: the test client serves a request on the caller's thread, while the process's
    background publisher may deliver an earlier request's outbox rows on its own at any moment.
    """

    def __init__(self, *engines):
        import threading

        self.engines, self.seen, self._thread = engines, [], threading.get_ident()

    def __enter__(self):
        from sqlalchemy import event

        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_):
        from sqlalchemy import event

        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, *_args):
        import threading

        if threading.get_ident() == self._thread:
            self.seen.append(statement)
