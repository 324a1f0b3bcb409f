"""Flower refuses to start without authentication outside development, and asks for it when running."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.helpers import Process, wait_for
from tests.operations.test_metrics import free_port
from tests.test_settings import VENDOR_SECRETS

FLOWER = [sys.executable, "-m", "tasks.flower"]


def run_flower(**env) -> subprocess.CompletedProcess:
    return subprocess.run(FLOWER, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


# Production settings fit to start but for Flower's authentication.
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "EMAIL_PROVIDER": "sendgrid", "SENDGRID_API_KEY": "SG.x",
              "PAYMENTS_PROVIDER": "stripe", "SHIPPING_PROVIDER": "ups", "PII_KEYS": "k1:" + "QUJD" * 10 + "QUI=",
              "BACKUP_CIPHER_PASS": "b" * 40, **VENDOR_SECRETS}


@pytest.mark.parametrize("app_env", ["staging", "production"])
def test_refuses_to_start_without_authentication(app_env):
    env = PRODUCTION if app_env == "production" else {"APP_ENV": app_env}
    result = run_flower(**env, FLOWER_BASIC_AUTH="", FLOWER_AUTH="")
    assert result.returncode == 1
    assert f"refusing to start Flower with APP_ENV={app_env}" in result.stderr
    assert "Flower needs authentication outside development: set FLOWER_BASIC_AUTH" in result.stderr


def test_refuses_a_malformed_password_pair():
    result = run_flower(APP_ENV="staging", FLOWER_BASIC_AUTH="ops")
    assert result.returncode == 1 and "user:password pairs" in result.stderr


def get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)  # noqa: S310  (loopback http only)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


def test_asks_for_the_password_when_running(tmp_path):
    port = free_port()
    flower = Process(FLOWER, tmp_path / "flower.log", env={
        "APP_ENV": "staging", "FLOWER_BASIC_AUTH": "ops:a-long-flower-password", "FLOWER_PORT": str(port)})
    flower.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{base}/healthcheck") == 200, timeout=30, interval=0.2, message="Flower to answer")
        assert get(f"{base}/") == 401
        assert get(f"{base}/api/workers") == 401
        assert get(f"{base}/", ("ops", "wrong")) == 401
        assert get(f"{base}/", ("ops", "a-long-flower-password")) == 200
    finally:
        flower.stop()
