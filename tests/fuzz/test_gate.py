"""The gate: no 5xx and no response outside the OpenAPI document, for any caller (FUZZ_CASES per operation)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.fuzz import gate


CASES = int(os.environ.get("FUZZ_CASES", "20"))


@pytest.fixture
def app(settings, worker):
    """The suite's app with a real worker, which fetches the shipping rates web only reads from the cache
    (a miss answered by no worker is a 503); the wait is long enough for a loaded machine."""
    from web import create_app

    app = create_app(replace(settings, SHIPPING_RATE_WAIT=15.0))
    app.config["TESTING"] = True
    yield app
    app.extensions["shop"].db.dispose()


@pytest.mark.timeout(60 + CASES * 30)  # about 272 operation × caller pairs; a loaded 2-core machine does ~30 cases/s
def test_every_operation_as_every_caller(app):
    cases, seed = CASES, int(os.environ.get("FUZZ_SEED", "0"))
    tallies = gate.run(app, cases, seed)
    print(f"\nFUZZ_CASES={cases} FUZZ_SEED={seed}\n" + gate.table(tallies))
    failures = sorted({failure for tally in tallies.values() for failure in tally.failures})
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "w") as out:
            out.write("\n\n".join(failures))
    assert not failures, f"{len(failures)} failed checks; the first ones:\n\n" + "\n\n".join(failures[:8])
