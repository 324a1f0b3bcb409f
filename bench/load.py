"""Mixed load (the spec's mix) at fixed offered rates over 1,000 connections, per gunicorn worker class.

    make bench-load                          # or: .venv/bin/python -m bench.load

Seeds a scratch database (BENCH_NAME, default shop_bench_load; BENCH_PRODUCTS products, reused while
the count matches) with a catalog like bench/catalog.py's, a teapot with stock to spare and
BENCH_CUSTOMERS customers with access tokens; starts a Celery worker (sandbox payments, email written
to a scratch outbox folder) on its own RabbitMQ virtual host and Redis db (BENCH_REDIS_URL), then for
each gunicorn configuration in BENCH_WORKER_CLASS ("sync:N", "gthread:NxT" or "gevent:N[xC]" with C
connections per process, e.g. "gthread:2x8,gevent:2"), one wrk run through a schedule of rates:

  1. bare Flask (bench/bare.py) served by the same configuration through BENCH_RATES: what wrk itself
     manages to offer over 1,000 paced connections at each step;
  2. BENCH_WARMUP seconds at 100 req/s (not reported), then BENCH_SECONDS at 100 req/s: the spec's
     figure (p95 < 300 ms);
  3. BENCH_STEP_SECONDS at each rate of BENCH_RATES; the highest step with p95 < 50 ms, errors <= 1%
     and an answered rate within 90% of bare Flask's at the same step, before the first that fails, is
     run again for BENCH_SECONDS.

`python -m bench.load in-process [rounds]` instead measures CPU per request of each class of the mix in one
process (test client), PostgreSQL's CPU per request beside it; BENCH_PROFILE=<class> prints its cProfile.

wrk (bench/load.lua) holds BENCH_CONNECTIONS connections (1,000: the spec's concurrent users) and
paces each one with delay(): 65% guest reads (search, filtered listing, product detail, categories),
25% signed-in reads (the same, plus the customer's orders), 10% checkout (POST /orders, then POST
/orders/{id}/pay). It prints p50/p95/p99 and errors per class and overall, the achieved rate beside
the offered one, CPU ms per request of gunicorn and the worker, wrk's CPU share and the load average.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_load")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "20000"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "200"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "1000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
STEP_SECONDS = int(os.environ.get("BENCH_STEP_SECONDS", "20"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))  # absorbs the 1,000 connections' first requests
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "100,150,200,300,500,700,1000").split(",")]
# gthread threads stay within what a process's database pool keeps (3 x DATABASE_POOL_SIZE 5).
CONFIGS = os.environ.get("BENCH_WORKER_CLASS", "gthread:2x8,gevent:2,gthread:4x4,sync:2").split(",")
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
TAIL = 5  # seconds at the last rate after the last phase, so its requests can be answered
P95_GOAL_MS, SPEC_RATE = 50.0, 100
# One scratch outbox folder per run: the servers this script starts import this module too (bare Flask is
# `bench.load:bare`) and take the run's folder from the environment instead of making one each.
MAIL = Path(os.environ.get("BENCH_LOAD_MAIL") or tempfile.mkdtemp(prefix="bench-load-mail-"))
os.environ.update({
    "BENCH_DATABASE": NAME, "BENCH_PG_SERVER": PG, "BENCH_REDIS_URL": REDIS_URL,
    "APP_ENV": "development", "LOG_LEVEL": "WARNING", "DATABASE_URL": f"{PG}/{NAME}",
    "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}", "REDIS_URL": REDIS_URL,
    "EMAIL_OUTBOX_DIR": str(MAIL), "BENCH_LOAD_MAIL": str(MAIL), "FULFILLMENT_EMAIL": "",
    "PAYMENTS_PROVIDER": "sandbox",
    # 200 customers share 1,000 users' load: the per-user budget (still counted in Redis) never refuses.
    "RATE_LIMIT_DEFAULT": "1000000000 per minute",
})

from sqlalchemy import create_engine, text  # noqa: E402

from bench import catalog  # noqa: E402  (reads BENCH_DATABASE, BENCH_PG_SERVER, BENCH_REDIS_URL set above)
from bench.stack import (free_port, fresh_vhost, rabbitmqctl, seed_teapot_and_customers, session_cpu,  # noqa: E402
                         worker_command)


def raise_file_limit() -> None:
    """1,000 client sockets plus 1,000 server ones (inherited by wrk and gunicorn): lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, 65536)) if hard != resource.RLIM_INFINITY else max(soft, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < 2 * CONNECTIONS + 256:
        sys.exit(f"open files limit {wanted} is too low for {CONNECTIONS} connections (raise ulimit -n)")


def prepare() -> tuple[list[str], list[str], str]:
    """The scratch catalog (seeded when its size differs), customers' tokens and a checkout body."""
    from bootstrap import bootstrap

    bootstrap()  # the PII key ring, which a migration uses
    started = time.monotonic()
    if catalog.product_count() not in (PRODUCTS, PRODUCTS + 1):  # + the checkout's teapot, once added
        catalog.recreate_database()
        catalog.seed(PRODUCTS)
        print(f"seeded {PRODUCTS:,} products in {time.monotonic() - started:.0f} s", flush=True)
    else:
        catalog.migrate()
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app()
    shop = app.extensions["shop"]
    with shop.db.session() as session:
        teapot = session.execute(text("SELECT v.id FROM product_variants v WHERE v.sku = 'BENCH-1'")).scalar()
        if teapot is None:
            variant, _ = seed_teapot_and_customers(session, CUSTOMERS, "load")
            teapot = variant.id
            session.commit()
        users = session.execute(text("SELECT id FROM users WHERE email LIKE 'load%' ORDER BY email")).scalars().all()
        with app.app_context():
            tokens = [access_token(u, "customer", mfa=False, session_id=uuid.uuid4()) for u in users]
    shop.db.dispose()
    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        categories = [tuple(row) for row in conn.execute(text("SELECT id, parent_id, name, path FROM categories"))]
    engine.dispose()
    chosen = catalog.paths(categories, random.Random(7))
    reads = chosen["search"] + chosen["listing"] + chosen["detail"][:300]
    reads += [f"/api/v1/categories/{c[0]}" for c in categories] + ["/api/v1/categories"] * 10
    body = json.dumps({"items": [{"variantId": str(teapot), "quantity": 1}],
                       "shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                                           "postalCode": "75001", "country": "FR"}})
    return reads, tokens, body


def start(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()



def serve(config: str, app: str, logs: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn with the project's config and worker class `config` ("sync:N", "gthread:NxT" with T threads or
    "gevent:N[xC]" with C connections per process)."""
    worker_class, _, size = config.partition(":")
    workers, _, each = size.partition("x")
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_WORKER_CLASS": worker_class, "WEB_CONCURRENCY": workers,
           "WEB_THREADS": each if worker_class == "gthread" else "1",
           "PROMETHEUS_MULTIPROC_DIR": str(logs / f"prom-{port}")}
    if worker_class == "gevent" and each:
        env["WEB_WORKER_CONNECTIONS"] = each
    process = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app], logs / f"{config}.log", **env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + ("/healthz" if app == "wsgi:app" else "/"), timeout=2):  # noqa: S310
                return process, url
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"{app} ({config}) did not start; see {logs}")


def settle(url: str) -> None:
    """Until the server answers at once: requests left queued by the previous run's connections
    (a sync worker still serves those wrk abandoned) must not be counted against the next run."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=60):  # noqa: S310  (loopback)
                pass
        except OSError:
            continue
        if time.monotonic() - started < 0.2:
            return
        time.sleep(1)


def percentile(ordered: list[int], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] / 1000


def run(url: str, schedule: list[tuple[int, int]], data: Path, servers: list[int], bare: bool = False) -> list[dict]:
    """One wrk run through `schedule` ((seconds, offered req/s) phases, a tail added); figures per phase.

    A request belongs to the phase it was sent in. The first phase absorbs the burst of each
    connection's first request; a 5 s tail at the last rate lets the last phase's requests be answered.
    """
    schedule = [*schedule, (TAIL, schedule[-1][1])]
    out = data.with_suffix(".out")
    seconds = sum(s for s, _ in schedule)
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(ROOT / "bench" / "load.lua"), url, "--", str(data),
               ",".join(f"{s}:{r}" for s, r in schedule), "bare" if bare else "mix",
               str(CONNECTIONS // WRK_THREADS), str(CONNECTIONS)]
    settle(url + ("/" if bare else "/healthz"))
    cpu = [[session_cpu(sid) for sid in servers]]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_ms = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env={**os.environ, "LOAD_OUT": str(out)})
    loads = []
    for _ in schedule:  # CPU time of the servers at each phase's end
        time.sleep(max(0.0, start_ms / 1000 + sum(s for s, _ in schedule[:len(cpu)]) - time.monotonic()))
        cpu.append([session_cpu(sid) for sid in servers])
        loads.append(os.getloadavg()[0])
    wrk.communicate()
    if wrk.returncode:
        raise RuntimeError(f"wrk failed ({wrk.returncode})")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    summary = [int(v) for v in out.read_text().split()[1:]]
    bounds = [start_ms + 1000 * sum(s for s, _ in schedule[:i + 1]) for i in range(len(schedule))]
    phases = [{"counts": {}, "latencies": {}, "codes": {}, "sends": []} for _ in schedule]

    def phase_of(sent_ms: int) -> dict:
        return phases[min(len(bounds) - 1, sum(1 for b in bounds if sent_ms >= b))]

    for part in sorted(out.parent.glob(out.name + ".*")):
        for line in part.read_text().splitlines():
            fields = line.split()
            if fields[0] == "Q" and len(fields) == 3:
                phase = phase_of(int(fields[2]))
                phase["counts"].setdefault(fields[1], [0, 0, 0])[0] += 1
                if fields[1] != "first":
                    phase["sends"].append(int(fields[2]))
            elif fields[0] == "A" and len(fields) == 5:
                phase = phase_of(int(fields[4]))
                count = phase["counts"].setdefault(fields[1], [0, 0, 0])
                phase["latencies"].setdefault(fields[1], []).append(int(fields[3]))
                if fields[2].startswith("2"):
                    count[1] += 1
                else:
                    count[2] += 1
                    key = f"{fields[1]} {fields[2]}"
                    phase["codes"][key] = phase["codes"].get(key, 0) + 1
        part.unlink()
    out.unlink()
    results = []
    for i, ((phase_seconds, rate), phase) in enumerate(zip(schedule[:-1], phases, strict=False)):
        classes = {}
        for cls, (sent, ok, bad) in sorted(phase["counts"].items()):
            values = sorted(phase["latencies"].get(cls, []))
            classes[cls] = {"sent": sent, "ok": ok, "non2xx": bad, "unanswered": sent - ok - bad,
                            "p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99)}
        # Each connection's first request is sent at the start, all at once: reported apart, left out of the totals.
        paced = {cls: c for cls, c in classes.items() if cls != "first"}
        every = sorted(v for cls, values in phase["latencies"].items() if cls != "first" for v in values)
        sent = sum(c["sent"] for c in paced.values())
        answered = sum(c["ok"] + c["non2xx"] for c in paced.values())
        window = phase_seconds
        if i == 0 and phase["sends"]:  # paced requests start after the first answers
            window = (bounds[0] - min(phase["sends"])) / 1000
        # A process that exited meanwhile (a pool child replaced) takes its CPU time with it: shown as 0.
        work = [max(0.0, after - before) for before, after in zip(cpu[i], cpu[i + 1], strict=True)]
        results.append({"rate": rate, "seconds": phase_seconds, "achieved": answered / max(window, 0.001),
                        "sent": sent, "answered": answered, "errors": sent - sum(c["ok"] for c in paced.values()),
                        "p50": percentile(every, 50), "p95": percentile(every, 95), "p99": percentile(every, 99),
                        "classes": classes, "codes": phase["codes"],
                        "cpu_ms": [1000 * w / max(answered + classes.get("first", {}).get("ok", 0), 1) for w in work],
                        "wrk_cpu": wrk_cpu / seconds, "load": loads[i],
                        "socket": summary[2:5], "timeouts": summary[6]})
    return results


def passes(r: dict, reference: dict) -> bool:
    """p95 under the goal, errors <= 1 % and at least 90 % of what `reference` (bare Flask at the same step)
    answered: wrk paces 1,000 connections short of some offered rates by itself, bare Flask included."""
    return (r["p95"] < P95_GOAL_MS and r["errors"] <= 0.01 * max(r["sent"], 1)
            and r["achieved"] >= 0.9 * reference["achieved"])


def best_rate(steps: list[dict], bare_steps: list[dict]) -> int:
    """The highest rate of the steps before the first that fails (later ones carry its backlog)."""
    best = 0
    for step, reference in zip(steps, bare_steps, strict=True):
        if not passes(step, reference):
            break
        best = step["rate"]
    return best


def line(label: str, r: dict) -> str:
    cpu = " + ".join(f"{ms:.1f}" for ms in r["cpu_ms"])
    return (f"| {label} | {r['rate']:,} | {r['achieved']:,.0f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
            f"{r['errors']} of {r['sent']:,} | {cpu} | {r['wrk_cpu']:.0%} | {r['load']:.2f} |")


HEADER = ("| run | offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/req (web + worker) "
          "| wrk CPU (of one core) | load avg |\n|---|---|---|---|---|---|---|---|---|---|")


def per_class(r: dict) -> str:
    rows = ["| class | sent | 2xx | non-2xx | unanswered | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|---|---|---|"]
    for cls, c in r["classes"].items():
        rows.append(f"| {cls} | {c['sent']:,} | {c['ok']:,} | {c['non2xx']} | {c['unanswered']} | {c['p50']:.0f} | "
                    f"{c['p95']:.0f} | {c['p99']:.0f} |")
    extra = f"whole wrk run: socket errors connect/read/write {r['socket']}, timeouts (> 10 s) {r['timeouts']}"
    if r["codes"]:
        extra += "; statuses " + ", ".join(f"{k}: {n}" for k, n in sorted(r["codes"].items()))
    return "\n".join(rows) + "\n" + extra


def measure(config: str, data: Path, bare_data: Path, worker: subprocess.Popen, logs: Path) -> dict:
    import redis

    bare, bare_url = serve(config, "bench.load:bare", logs)
    try:
        bare_steps = run(bare_url, [(WARMUP, SPEC_RATE), *((STEP_SECONDS, r) for r in RATES)], bare_data,
                         [bare.pid], bare=True)[1:]
        print(f"\n### {config}: bare Flask through the steps (the answered rate each step is held to)\n\n{HEADER}",
              flush=True)
        for step in bare_steps:
            print(line(f"bare {step['rate']}", step), flush=True)
    finally:
        stop(bare)
    redis.Redis.from_url(REDIS_URL).flushdb()  # every configuration starts with a cold page cache
    web, url = serve(config, "wsgi:app", logs)
    final = None
    try:
        servers = [web.pid, worker.pid]
        phases = run(url, [(WARMUP, SPEC_RATE), (SECONDS, SPEC_RATE), *((STEP_SECONDS, r) for r in RATES)],
                     data, servers)
        spec, steps = phases[1], phases[2:]
        print(f"\n### {config}: {SPEC_RATE} req/s for {SECONDS} s (after {WARMUP} s of warm-up)\n\n{HEADER}\n"
              f"{line('spec rate', spec)}\n\n{per_class(spec)}\n\nrate steps ({STEP_SECONDS} s each, one wrk run):"
              f"\n\n{HEADER}", flush=True)
        for step, reference in zip(steps, bare_steps, strict=True):
            print(line(f"step {step['rate']} ({step['achieved'] / max(reference['achieved'], 0.001):.0%} of bare)",
                       step), flush=True)
        best = best_rate(steps, bare_steps)
        if best:
            final = run(url, [(WARMUP, best), (SECONDS, best)], data, servers)[1]
            print(f"\nhighest rate with p95 < {P95_GOAL_MS:.0f} ms, run again for {SECONDS} s:\n\n{HEADER}\n"
                  f"{line('max rate', final)}\n\n{per_class(final)}", flush=True)
    finally:
        stop(web)
    return {"config": config, "spec": spec, "best": best, "final": final,
            "bare_best": best_rate(bare_steps, bare_steps)}


def bare(environ, start_response):
    """bench/bare.py's app, echoing X-Request-ID as the shop does, so wrk's answers are matched the same way."""
    from bench.bare import app

    request_id = environ.get("HTTP_X_REQUEST_ID")

    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Request-ID", request_id)] if request_id else headers, exc_info)

    return app(environ, start)


def summary(results: list[dict]) -> str:
    rows = [f"| worker class | p50 / p95 / p99 ms at {SPEC_RATE} req/s | errors at {SPEC_RATE} | "
            f"highest rate with p95 < {P95_GOAL_MS:.0f} ms | its p50 / p95 / p99 ms ({SECONDS} s) | errors there "
            f"| bare Flask highest rate | ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s, f = r["spec"], r["final"]
        there = f"{f['p50']:.0f} / {f['p95']:.0f} / {f['p99']:.0f}" if f else "-"
        ratio = f"{r['best'] / r['bare_best']:.2f}" if r["best"] and r["bare_best"] else "-"
        rows.append(f"| {r['config']} | {s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f} | {s['errors']} of "
                    f"{s['sent']:,} | {r['best'] or f'< {RATES[0]}'} | {there} | {f['errors'] if f else '-'} | "
                    f"{r['bare_best'] or f'< {RATES[0]}'} | {ratio} |")
    return "\n".join(rows)


def _interleaved(calls: dict, rounds: int) -> tuple[dict[str, tuple[float, float]], float]:
    """bench.stack.interleaved with the CPU of the calling thread only (the outbox publisher's thread works
    after a checkout or payment, during whichever call comes next); and the other threads' CPU µs per round."""
    from bench.stack import interleaved

    process, thread = time.process_time(), time.thread_time()
    results = interleaved(calls, rounds, clock=time.thread_time)
    others = (time.process_time() - process) - (time.thread_time() - thread)
    return results, others * 1e6 / (rounds + min(50, rounds))


def in_process(reads: list[str], tokens: list[str], body: str, rounds: int) -> str:
    """CPU per request of each class of the mix in one process (test client: no HTTP server, no wrk).

    The kinds are taken in turn (bench.stack.interleaved), so drifting load weighs on each alike; each
    kind's paths are the run's own, in turn; page caches warm (every path read once first), as in a
    steady run. PostgreSQL's CPU per request is measured apart, each kind alone, from its backends.
    """
    from bench.catalog import database_cpu_per_call
    from web import create_app

    app = create_app()
    client = app.test_client()
    products = [p for p in reads if p.startswith("/api/v1/products")]
    categories = [p for p in reads if p.startswith("/api/v1/categories")]
    customers = [{"Authorization": f"Bearer {t}"} for t in tokens]
    for path in reads:
        assert client.get(path).status_code == 200, path
    state = {"order": None, "n": 0}

    def cycle(items):
        turn = itertools.cycle(items)
        return lambda: next(turn)

    def get(paths, who=None, status=200):
        path, caller = cycle(paths), cycle(customers)

        def call():
            response = client.get(path(), headers=caller() if who else {})
            assert response.status_code == status, response.get_data()
        return call

    def checkout():
        state["n"] += 1
        headers = customers[state["n"] % len(customers)]
        response = client.post("/api/v1/orders", data=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 201, response.get_data()
        state["order"] = (response.get_json()["id"], headers)

    def pay():
        order, headers = state["order"]
        response = client.post(f"/api/v1/orders/{order}/pay", json={"paymentMethod": "sandbox_success"},
                               headers=headers)
        assert response.status_code == 202, response.get_data()

    calls = {"guest product page (search, listing, detail)": get(products),
             "guest category": get(categories),
             "customer product page": get(products, who=True),
             "customer category": get(categories, who=True),
             "customer's own orders": get(["/api/v1/orders?limit=10"], who=True),
             "checkout (POST /orders)": checkout, "pay (POST /orders/{id}/pay)": pay}
    only = os.environ.get("BENCH_PROFILE")
    if only:  # cProfile of one kind: BENCH_PROFILE=<start of its name>
        import cProfile
        import pstats

        chosen = {n: f for n, f in calls.items() if n.startswith(only)}
        if only.startswith("pay"):
            chosen = {"checkout (POST /orders)": checkout, **chosen}
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(rounds):
            for fn in chosen.values():
                fn()
        profile.disable()
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(40)
        return ""
    results, background = _interleaved(calls, rounds)
    # A checkout's database CPU is counted with its payment's (a payment needs an order of its own).
    database = database_cpu_per_call({name: (lambda call=call: (call(), pay())) if name.startswith("checkout") else call
                                      for name, call in calls.items() if not name.startswith("pay")}, rounds)
    app.extensions["shop"].db.dispose()
    lines = [f"In process: {rounds:,} requests of each kind taken in turn (test client, no HTTP server); "
             f"load average {os.getloadavg()[0]:.2f} at the end; CPU of the request's own thread; PostgreSQL CPU "
             "each kind alone (checkout's includes its payment's)", "",
             "| request | median wall µs | median CPU µs | PostgreSQL CPU µs/req |", "|---|---|---|---|"]
    lines += [f"| {name} | {wall:,.0f} | {cpu:,.0f} | {database.get(name, 0):,.0f} |"
              for name, (wall, cpu) in results.items()]
    lines.append(f"| the process's other threads (the outbox publisher), per checkout + payment | | "
                 f"{background:,.0f} | |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["in-process"]:  # python -m bench.load in-process [rounds]
        reads, tokens, body = prepare()
        fresh_vhost(NAME)  # checkout's and payment's tasks are published (no worker takes them)
        try:
            print(in_process(reads, tokens, body, int(sys.argv[2]) if len(sys.argv) > 2 else 500))
        finally:
            rabbitmqctl("delete_vhost", NAME, check=False)
            shutil.rmtree(MAIL, ignore_errors=True)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (make bench-load installs it)")
    raise_file_limit()
    logs = Path(tempfile.mkdtemp(prefix="bench-load-logs-"))
    reads, tokens, body = prepare()
    data, bare_data = logs / "mix.txt", logs / "bare.txt"
    data.write_text("".join(f"R {p}\n" for p in reads) + "".join(f"T {t}\n" for t in tokens) + f"B {body}\n")
    bare_data.write_text("R /\n")
    fresh_vhost(NAME)
    worker = start(worker_command(sys.executable, f"load-{uuid.uuid4().hex[:6]}@%h", processes="2"),
                   logs / "worker.log")
    print(f"Mixed load: {PRODUCTS:,} products, {len(tokens)} customers, {CONNECTIONS} connections, wrk "
          f"{WRK_THREADS} threads, {os.cpu_count()} CPUs, configurations {', '.join(CONFIGS)}; "
          f"logs in {logs} (kept if the run fails)", flush=True)
    results = []
    try:
        for config in CONFIGS:
            results.append(measure(config, data, bare_data, worker, logs))
    finally:
        stop(worker)
        rabbitmqctl("delete_vhost", NAME, check=False)
        shutil.rmtree(MAIL, ignore_errors=True)
    # The logs (and the servers' metric files among them) are kept only when a run fails, to be read;
    # the scratch database is kept on purpose, reused by the next run while its product count matches.
    shutil.rmtree(logs, ignore_errors=True)
    print(f"\n## Summary ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())})\n\n{summary(results)}")


if __name__ == "__main__":
    main()
