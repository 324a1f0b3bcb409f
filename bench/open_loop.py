"""An open-loop HTTP load: requests sent at a fixed rate, each on its own connection, whatever the answers do.

A closed loop (wrk) sends a connection's next request when its answer came, so
a slow server is offered less and its queueing hides from the percentiles.
Here request k is due at start + k/rate; its latency is counted from that
moment (not from when it was actually sent), so a client falling behind
cannot flatter the server either (it is reported as `late`). Each request
opens a connection, sends, reads to the end, and closes (gunicorn's sync
workers close after every answer anyway); no connection is ever held idle,
which would block a sync worker.

    from bench.open_loop import run
    run("http://127.0.0.1:8000", ["/api/v1/products?q=mug"], rate=200, seconds=10)
"""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import urlsplit


async def _one(host: str, port: int, request: bytes, due: float, timeout: float) -> tuple[float, bool]:
    """Latency in seconds from `due` to the end of the answer, and whether the status was 2xx/3xx."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout)  # the server closes after the answer
    finally:
        writer.close()
    ok = answer[9:10] in (b"2", b"3")
    return time.perf_counter() - due, ok


async def _run(url: str, paths: list[str], rate: float, seconds: float, authorization: str,
               timeout: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    requests = [f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}Connection: close\r\n\r\n".encode()
                for path in paths]
    rng = random.Random(11)
    total = int(rate * seconds)
    tasks, late = [], 0
    start = time.perf_counter() + 0.05
    for k in range(total):
        due = start + k / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.001:
            late += 1  # the client itself fell behind; the latency still counts from `due`
        tasks.append(asyncio.ensure_future(_one(host, port, rng.choice(requests), due, timeout)))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    latencies = sorted(o[0] for o in outcomes if not isinstance(o, BaseException) and o[1])
    errors = total - len(latencies)

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    return {"offered": rate, "requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "errors": errors, "late": late, "sent": total,
            "p50": percentile(50), "p95": percentile(95), "p99": percentile(99)}


def run(url: str, paths: list[str], rate: float, seconds: float, authorization: str = "",
        timeout: float = 10.0) -> dict:
    """Offer `rate` requests a second for `seconds`; throughput, errors and latency percentiles (ms)."""
    return asyncio.run(_run(url, paths, rate, seconds, authorization, timeout))


async def _keep_alive(host: str, port: int, requests: list[bytes], stop: float, latencies: list, counts: dict,
                      rng: random.Random, timeout: float) -> None:
    """One connection sending its next request when its answer came (a closed loop, as wrk's connections)."""
    reader = writer = None
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            started = time.perf_counter()
            writer.write(rng.choice(requests))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout)
            latencies.append(time.perf_counter() - started)
            if head[9:10] not in (b"2", b"3"):
                counts["errors"] += 1
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            counts["errors"] += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _closed(url: str, paths: list[str], seconds: float, connections: int, authorization: str,
                  timeout: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    requests = [f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}\r\n".encode() for path in paths]
    latencies: list[float] = []
    counts = {"errors": 0}
    start = time.perf_counter()
    await asyncio.gather(*(_keep_alive(host, port, requests, start + seconds, latencies, counts,
                                       random.Random(k), timeout) for k in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies), "seconds": elapsed, "errors": counts["errors"],
            "p50": percentile(50), "p95": percentile(95), "p99": percentile(99)}


def closed(url: str, paths: list[str], seconds: float, connections: int, authorization: str = "",
           timeout: float = 10.0) -> dict:
    """wrk's closed loop in asyncio, for a machine without wrk: `connections` keep-alive connections, each
    sending its next request when its answer came. The client is Python: it takes far more CPU per request
    than wrk, which weighs most on the fastest rows (the bare endpoint); compare CPU per request."""
    return asyncio.run(_closed(url, paths, seconds, connections, authorization, timeout))
