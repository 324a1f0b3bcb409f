"""A TCP proxy on loopback in front of the broker (or Redis) that can hold back what the server sends.

`stall()` keeps every byte from the broker (publisher confirms among them) until
`flow()`; `delay` (seconds) holds each chunk from the broker that long, in
order. What clients send still reaches the broker at once. It is how a broker
whose confirms take seconds (quorum queues under disk pressure) looks to a
client, without touching the shared broker. `drop_next_reply()` throws away the
next chunk the server sends and passes everything after it: a command that ran
but whose answer was lost, as a client that times out sees it.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time


class StallingProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", delay: float = 0.0):
        self.target = (target_host, target_port)
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.dropping = threading.Event()
        self.dropped: list[bytes] = []
        self.closed = False
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def stall(self) -> None:
        self.flowing.clear()

    def flow(self) -> None:
        self.flowing.set()

    def drop_next_reply(self) -> None:
        self.dropping.set()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    @staticmethod
    def _forward_later(sink: socket.socket, delayed: queue.Queue) -> None:
        """Send each (due, chunk) at its time, in order."""
        while (entry := delayed.get()) is not None:
            due, chunk = entry
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                sink.sendall(chunk)
            except OSError:
                return

    def _pump(self, source: socket.socket, sink: socket.socket, from_broker: bool) -> None:
        delayed: queue.Queue = queue.Queue()
        if from_broker:
            threading.Thread(target=self._forward_later, args=(sink, delayed), daemon=True).start()
        try:
            while chunk := source.recv(65536):
                if from_broker:
                    self.flowing.wait()
                    if self.dropping.is_set():
                        self.dropping.clear()
                        self.dropped.append(chunk)
                        continue
                    if self.delay:
                        delayed.put((time.monotonic() + self.delay, chunk))
                        continue
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            delayed.put(None)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
