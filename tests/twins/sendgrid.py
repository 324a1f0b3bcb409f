"""A SendGrid twin on loopback: POST /v3/mail/send and the Email Activity API's GET /v3/messages, as SendGrid answers.

Mail Send accepts with 202 and an X-Message-Id. The activity feed lists an
accepted message only `feed_delay` seconds after it was accepted, as the real
feed lags behind; it understands the one query form we send,
`unique_args['NAME']="VALUE"`, and answers any other with 400.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.twins.loopback import LoopbackServer

QUERY = re.compile(r"""\(?unique_args\['(?P<name>[^']+)'\]\s*=\s*"(?P<value>[^"]*)"\)?""")


class SendGridTwin(LoopbackServer):
    """Accepts mail, or answers the statuses queued in `script` (mail) and `lookup_script` (activity)."""

    def __init__(self, api_key: str = "SG.test-key", feed_delay: float = 0.0, journal: Path | None = None):
        self.api_key = api_key
        self.feed_delay = feed_delay
        self.journal = journal  # a file to append each accepted mail's row to, readable while a long case runs
        # What to answer Mail Send first, in order: a status, or the connection closed with no answer,
        # "lost" after accepting the mail (the client cannot tell it was) and "cut" before.
        self.script: list[int | str] = []
        self.lookup_script: list[int] = []  # the same for the activity feed
        self.requests: list[dict] = []  # Mail Send requests
        self.accepted: list[dict] = []  # bodies of the mail accepted
        self.lookups: list[dict] = []  # activity feed requests: path, parsed query and when (monotonic)
        self._feed: list[tuple[float, dict]] = []  # (when it shows in the feed, its row)
        self._lock = threading.Lock()
        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), self._handler()))
        self.url = self.base_url

    def clear(self) -> None:
        with self._lock:
            for kept in (self.script, self.lookup_script, self.requests, self.accepted, self.lookups, self._feed):
                kept.clear()

    def _accept(self, body: dict) -> str:
        message_id = uuid.uuid4().hex[:22]
        personalization = body["personalizations"][0]
        row = {"from_email": body["from"]["email"], "msg_id": f"{message_id}.filterdrecv-5645d9c87f-x2k8p-1-0",
               "subject": body.get("subject", ""), "to_email": personalization["to"][0]["email"],
               "status": "delivered", "opens_count": 0, "clicks_count": 0,
               "last_event_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "unique_args": {**body.get("custom_args", {}), **personalization.get("custom_args", {})}}
        with self._lock:
            self.accepted.append(body)
            self._feed.append((time.monotonic() + self.feed_delay, row))
            if self.journal is not None:
                with self.journal.open("a") as journal:
                    journal.write(json.dumps(row) + "\n")
        return message_id

    def _search(self, name: str, value: str, limit: int) -> list[dict]:
        now = time.monotonic()
        with self._lock:
            found = [dict(row) for shows, row in self._feed if shows <= now and row["unique_args"].get(name) == value]
        for row in found:
            del row["unique_args"]  # the feed filters on them but does not list them
        return found[:limit]

    def _handler(self):
        twin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict | None = None, headers: dict | None = None):
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {twin.api_key}":
                    return True
                self._answer(401, {"errors": [{"message": "The provided authorization grant is invalid",
                                               "field": None}]})
                return False

            def do_GET(self):
                url = urlsplit(self.path)
                params = {key: values[-1] for key, values in parse_qs(url.query).items()}
                with twin._lock:
                    twin.lookups.append({"path": url.path, "params": params, "at": time.monotonic()})
                    scripted = twin.lookup_script.pop(0) if twin.lookup_script else None
                if url.path != "/v3/messages":
                    return self._answer(404, {"errors": [{"message": "not found", "field": None}]})
                if not self._authorized():
                    return None
                if scripted and scripted >= 400:
                    return self._answer(scripted, {"errors": [{"message": f"scripted {scripted}", "field": None}]})
                query = QUERY.fullmatch(params.get("query", "").strip())
                try:
                    limit = int(params.get("limit", "10"))
                except ValueError:
                    limit = 0
                if query is None or not 1 <= limit <= 1000:
                    return self._answer(400, {"errors": [{"message": "invalid query" if query is None
                                                          else "limit must be between 1 and 1000",
                                                          "field": "query" if query is None else "limit"}]})
                return self._answer(200, {"messages": twin._search(query["name"], query["value"], limit)})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with twin._lock:
                    twin.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                         "at": time.monotonic()})
                    scripted = twin.script.pop(0) if twin.script else None
                if self.path != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found", "field": None}]})
                if not self._authorized():
                    return None
                missing = [f for f in ("personalizations", "from", "subject", "content") if not body.get(f)]
                if missing:
                    return self._answer(400, {"errors": [{"message": "required", "field": f} for f in missing]})
                if scripted == "cut":
                    self.close_connection = True
                    return None
                if isinstance(scripted, int) and scripted >= 400:
                    return self._answer(scripted, {"errors": [{"message": f"scripted {scripted}", "field": None}]})
                message_id = twin._accept(body)
                if scripted == "lost":
                    self.close_connection = True
                    return None
                self._answer(202, headers={"X-Message-Id": message_id})

        return Handler
