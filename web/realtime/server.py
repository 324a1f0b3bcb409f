"""The gateway's process: a websockets server on WS_HOST:WS_PORT serving /ws (and /healthz)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from http import HTTPStatus

from websockets.asyncio.server import serve

from bootstrap import bootstrap
from logconfig import configure_logging
from settings import Settings
from web.realtime.gateway import Gateway

log = logging.getLogger(__name__)
MAX_MESSAGE = 16 * 1024  # clients send only small JSON messages


def _route(connection, request):
    """Only /ws upgrades; /healthz answers plain HTTP for health checks."""
    path = request.path.partition("?")[0]  # a query string is ignored (tokens never travel in URLs)
    if path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    if path != "/ws":
        return connection.respond(HTTPStatus.NOT_FOUND, "only /ws is served here\n")
    return None


async def collect_garbage_in_steps(freeze_every: float = 10.0, full_every: float = 3600.0) -> None:
    """Keep the cyclic GC from pausing the loop for seconds.

    With 10,000 connections the heap holds millions of objects, and each
    automatic full collection walked all of them: 1-2.6 s pauses, every
    delivery waiting behind them. Objects alive for 10 s are frozen
    (young collections skip them); a full collection of everything runs once
    an hour, so garbage cycles of closed connections live at most that long.
    """
    gc.set_threshold(50_000, 10, 1_000_000_000)  # automatic full collections effectively off
    elapsed = 0.0
    while True:
        await asyncio.sleep(freeze_every)
        elapsed += freeze_every
        if elapsed >= full_every:
            elapsed = 0.0
            gc.unfreeze()
            gc.collect()
        gc.freeze()


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGTERM / SIGINT)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    gateway = Gateway(settings)
    # No per-message compression: it costs ~100 KiB per connection, and the messages are small.
    async with serve(gateway.handle, settings.WS_HOST, settings.WS_PORT, process_request=_route,
                     compression=None, max_size=MAX_MESSAGE, max_queue=4,
                     ping_interval=settings.WS_PING_INTERVAL, ping_timeout=settings.WS_PING_INTERVAL):
        workers = [asyncio.create_task(gateway.listen()), asyncio.create_task(gateway.sweep_revoked()),
                   asyncio.create_task(collect_garbage_in_steps())]
        log.info("real-time gateway listening", extra={"host": settings.WS_HOST, "port": settings.WS_PORT})
        await stop.wait()
        for worker in workers:
            worker.cancel()
    gateway.db.dispose()
    await gateway.redis.aclose()


def main() -> None:
    """`python -m web.realtime`: bootstrap from the environment, then serve until stopped."""
    settings = bootstrap().settings
    configure_logging(settings.LOG_LEVEL)
    asyncio.run(run(settings))
