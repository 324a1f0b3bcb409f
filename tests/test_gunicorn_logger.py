"""gunicorn builds no access-log fields while its access log is off (the app logs each request itself): no services."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from gunicorn.config import Config

pytestmark = pytest.mark.pure

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def conf_values() -> dict:
    """The literal settings of gunicorn.conf.py, read without running the file (it sets the process up)."""
    return {target.id: ast.literal_eval(node.value) for node in ast.parse(CONF.read_text()).body
            if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value, (ast.Constant, ast.Dict))}


def test_the_access_log_fields_are_built_only_when_the_access_log_is_on():
    cfg, conf = Config(), conf_values()
    for name in ("accesslog", "logconfig_dict", "logger_class"):
        if name in conf:
            cfg.set(name, conf[name])
    assert cfg.accesslog is None and cfg.logconfig_dict  # the JSON error log is what made gunicorn think it on
    logger = cfg.logger_class(cfg)
    built = []
    logger.atoms = lambda *args: built.append(args) or {}

    logger.access(object(), object(), {}, timedelta(milliseconds=3))
    assert built == [] and logger.access_log_enabled is False

    cfg.set("accesslog", "-")  # asked for: gunicorn writes its own access line again
    logger.setup(cfg)
    logger.access(object(), object(), {}, timedelta(milliseconds=3))
    assert len(built) == 1 and logger.access_log_enabled is True


def test_a_server_opens_no_control_socket_another_server_of_the_user_could_take_over(tmp_path):
    """gunicorn 27's control socket has one path per user: two servers on a machine shared it (each start took
    it from the other, each stop removed it for both). The servers run without it."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path), "PORT": str(port),
           "WEB_CONCURRENCY": "1"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF), "--chdir",
                               str(CONF.parent / "bench"), "bare:app"], cwd=CONF.parent, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/bare", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        assert not list(tmp_path.rglob("*.ctl"))  # neither $XDG_RUNTIME_DIR/gunicorn.ctl nor ~/.gunicorn/
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
