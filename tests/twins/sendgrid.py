"""A SendGrid twin: answers POST /v3/mail/send the way SendGrid does, on loopback."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


from tests.twins.loopback import LoopbackServer

class SendGridTwin(LoopbackServer):
    """Accepts mail with 202 and an X-Message-Id, or answers the statuses queued in `script`."""

    def __init__(self, api_key: str = "SG.test-key"):
        self.api_key = api_key
        self.script: list[int] = []  # statuses to answer first, in order
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        self._lock = threading.Lock()
        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), self._handler()))
        self.url = self.base_url

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

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with twin._lock:
                    twin.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    scripted = twin.script.pop(0) if twin.script else None
                if self.path != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found", "field": None}]})
                if self.headers.get("Authorization") != f"Bearer {twin.api_key}":
                    return self._answer(401, {"errors": [{"message": "The provided authorization grant is invalid",
                                                          "field": None}]})
                missing = [f for f in ("personalizations", "from", "subject", "content") if not body.get(f)]
                if missing:
                    return self._answer(400, {"errors": [{"message": "required", "field": f} for f in missing]})
                if scripted and scripted >= 400:
                    return self._answer(scripted, {"errors": [{"message": f"scripted {scripted}", "field": None}]})
                with twin._lock:
                    twin.accepted.append(body)
                self._answer(202, headers={"X-Message-Id": uuid.uuid4().hex})

        return Handler
