"""Circuit breakers: open after repeated transient failures, shared through Redis, close after a good trial."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

import pytest

from integrations.breaker import Guarded, make_breaker
from integrations.errors import PermanentError, TransientError
from tests.helpers import wait_for


class Flaky:
    def __init__(self):
        self.calls = 0
        self.failing = True

    def rates(self):
        self.calls += 1
        if self.failing:
            raise TransientError("vendor down")
        return "ok"

    def refuse(self):
        raise PermanentError("bad request")


def test_a_breaker_opens_is_shared_and_closes_again(settings, client, caplog):
    caplog.set_level(logging.WARNING, logger="integrations.breaker")
    vendor = Flaky()
    guarded = Guarded(vendor, partial(make_breaker, "twin", settings.REDIS_URL, fail_max=2, reset_timeout=2))
    for _ in range(2):
        with pytest.raises(TransientError):
            guarded.rates()
    assert guarded.breaker.current_state == "open"
    with pytest.raises(TransientError, match="circuit open"):
        guarded.rates()
    assert vendor.calls == 2  # the open breaker did not call the vendor
    assert 'vendor_circuit_open{vendor="twin"} 1.0' in client.get("/metrics").text

    # another process's breaker of the same name sees the state in Redis
    other = Guarded(vendor, partial(make_breaker, "twin", settings.REDIS_URL, fail_max=2, reset_timeout=2))
    with pytest.raises(TransientError, match="circuit open"):
        other.rates()
    assert vendor.calls == 2

    vendor.failing = False

    def trial():
        """None while the breaker still refuses; the vendor's answer once reset_timeout let a trial through."""
        try:
            return other.rates()
        except TransientError as refused:
            assert "circuit open" in str(refused)  # never the vendor: it no longer fails
            return None

    # Redis keeps opened_at in whole seconds: wait for the trial rather than sleeping past reset_timeout.
    assert wait_for(trial, timeout=30, interval=0.2, message="the breaker to let a trial call through") == "ok"
    assert vendor.calls == 3  # only the trial reached the vendor
    assert guarded.breaker.current_state == other.breaker.current_state == "closed"
    assert 'vendor_circuit_open{vendor="twin"} 0.0' in client.get("/metrics").text
    changes = [(r.__dict__["from"], r.__dict__["to"]) for r in caplog.records
               if r.getMessage() == "circuit breaker state changed"]
    assert ("closed", "open") in changes and ("half-open", "closed") in changes


def test_permanent_errors_do_not_open_the_breaker(settings):
    guarded = Guarded(Flaky(), partial(make_breaker, "strict", settings.REDIS_URL, fail_max=1, reset_timeout=60))
    for _ in range(3):
        with pytest.raises(PermanentError):
            guarded.refuse()
    assert guarded.breaker.current_state == "closed"


def test_a_closed_breaker_asks_redis_at_most_once_per_sync_and_learns_of_another_opening_it(settings):
    vendor, failing = Flaky(), Flaky()
    vendor.failing = False
    here = Guarded(vendor, partial(make_breaker, "synced", settings.REDIS_URL, fail_max=2, reset_timeout=60,
                                                 sync_seconds=0.5))
    commands = []
    client = here.breaker._state_storage._redis
    real = client.execute_command
    client.execute_command = lambda *args, **kwargs: commands.append(args[0]) or real(*args, **kwargs)
    assert [here.rates() for _ in range(50)] == ["ok"] * 50
    # at most one read of state and failure count (the breaker read them when it was made), nothing to reset
    assert commands in ([], ["MGET"])

    elsewhere = Guarded(failing, partial(make_breaker, "synced", settings.REDIS_URL, fail_max=2, reset_timeout=60,
                                                         sync_seconds=0.5))
    for _ in range(2):
        with pytest.raises(TransientError):
            elsewhere.rates()
    assert elsewhere.breaker.current_state == "open"
    wait_for(lambda: _refused(here), timeout=5, interval=0.05, message="the open state to reach this process")
    assert vendor.calls <= 50 + 10  # at most the calls of one sync interval went through meanwhile


def _refused(guarded) -> bool:
    try:
        guarded.rates()
    except TransientError as refused:
        assert "circuit open" in str(refused)
        return True
    return False


class Slow:
    """A vendor that answers after `seconds`, counting the calls in flight at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.now = self.most = 0

    def pay(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return "ok"


def test_threads_call_a_vendor_at_once_through_one_guarded_adapter(settings):
    """pybreaker holds a breaker's lock for the whole call: one breaker per thread, or the threads pool's
    payments would wait on each other's vendor calls."""
    vendor = Slow(0.5)
    guarded = Guarded(vendor, partial(make_breaker, "concurrent", settings.REDIS_URL, fail_max=2, reset_timeout=60))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(guarded.pay())) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["ok"] * 4
    assert vendor.most == 4  # all four were in the vendor together
    assert time.monotonic() - started < 4 * 0.5 * 0.75


def test_a_failure_counted_in_one_thread_opens_the_breaker_for_the_others(settings):
    vendor = Flaky()
    guarded = Guarded(vendor, partial(make_breaker, "threads", settings.REDIS_URL, fail_max=2, reset_timeout=60,
                                      sync_seconds=0.0))
    refused = []

    def call():
        try:
            guarded.rates()
        except TransientError as exc:
            refused.append(str(exc))

    for _ in range(3):  # each call in a thread of its own, one after the other
        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
    assert vendor.calls == 2  # the third thread's breaker found the state the second one's opened
    assert "circuit open" in refused[-1]
