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
