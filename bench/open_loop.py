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
