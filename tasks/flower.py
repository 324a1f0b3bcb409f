"""`python -m tasks.flower`: Flower, refusing to start without authentication outside development.

Flower takes its options from FLOWER_* variables; this sets them from the
settings (dropping empty ones, which Flower would take as values) and then
becomes `celery -A tasks flower`. Extra arguments are passed on.
"""

from __future__ import annotations

import os
import sys

from settings import ConfigError, Settings

OPTIONS = ("FLOWER_ADDRESS", "FLOWER_PORT", "FLOWER_BASIC_AUTH", "FLOWER_AUTH", "FLOWER_AUTH_PROVIDER",
           "FLOWER_BROKER_API")


def problems(settings: Settings) -> list[str]:
    """Why Flower must not start with these settings, one line each."""
    found = []
    pairs = [pair for pair in settings.FLOWER_BASIC_AUTH.split(",") if pair]
    if any(":" not in pair or pair.startswith(":") or pair.endswith(":") for pair in pairs):
        found.append("FLOWER_BASIC_AUTH must be user:password pairs separated by commas")
    oauth = bool(settings.FLOWER_AUTH and settings.FLOWER_AUTH_PROVIDER)
    if settings.APP_ENV != "development" and not pairs and not oauth:
        found.append("Flower needs authentication outside development: set FLOWER_BASIC_AUTH (user:password), "
                     "or FLOWER_AUTH with FLOWER_AUTH_PROVIDER (OAuth)")
    return found


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"refusing to start Flower: {exc}")
    found = problems(settings) + (settings.problems() if settings.production else [])
    if found:
        sys.exit(f"refusing to start Flower with APP_ENV={settings.APP_ENV}: " + "; ".join(found))
    for name in OPTIONS:
        value = str(getattr(settings, name))
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    command = [sys.executable, "-m", "celery", "-A", "tasks", "flower", *sys.argv[1:]]
    os.execv(sys.executable, command)  # noqa: S606  (a fixed argv: celery itself)


if __name__ == "__main__":
    main()
