"""Reading the next chunk of a feed while the current one is validated or merged."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_ITEM, _END, _ERROR = range(3)
_POLL_SECONDS = 0.1


class ReadAhead:
    """Iterate `items` in a background thread, at most `depth` items ahead, in the same order.

    Parsing (pandas' C tokenizer, SSH decryption) and the database both let go
    of the GIL, so the next chunk is read while this one is in PostgreSQL.
    Chunks still reach the caller one by one, in file order: what the caller
    does with them, and in which transactions, is unchanged. Use it as a
    context manager inside the one that opens the stream, so the thread is
    done before the stream closes; an error while reading is raised by the
    iteration, at the chunk it happened.
    """

    def __init__(self, items: Iterator, depth: int = 1):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="feed-read-ahead", daemon=True)

    def __enter__(self) -> ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def _fill(self) -> None:
        try:
            for item in self._items:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, which raises it)
            self._put((_ERROR, exc))
            return
        self._put((_END, None))

    def _put(self, entry: tuple) -> bool:
        """Queue `entry` unless the consumer has left; False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
