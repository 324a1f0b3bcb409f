"""What every HTTP twin shares: a server on an ephemeral 127.0.0.1 port, run in a daemon thread."""

from __future__ import annotations

import threading


class LoopbackServer:
    """Base of the twins: call `_listen(server)` in `__init__`, then use the twin as a context manager."""

    def _listen(self, server) -> None:
        self.server = server
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
