"""The one place environment variables are read.

Every setting has a development default that points at the local services,
so a fresh checkout runs with PostgreSQL, RabbitMQ and Redis alone.
`APP_ENV=production` refuses to start with a default secret or a sandbox
integration (see `Settings.problems`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent

DEV_SECRET_KEY = "dev-secret-key-change-me-in-production"  # noqa: S105  (refused in production)

# One variable per integration; the first choice is the default, and a
# choice listed in SANDBOXES is refused in production.
INTEGRATIONS = {
    "EMAIL_PROVIDER": ("sandbox", "sendgrid"),
    "PAYMENTS_PROVIDER": ("sandbox", "stripe"),
    "SHIPPING_PROVIDER": ("sandbox", "ups"),
    "SEARCH_BACKEND": ("postgres", "elasticsearch"),
    "STORAGE_BACKEND": ("local", "s3"),
}
SANDBOXES = {"sandbox"}
# A development key ring (key id "dev"); refused in production like SECRET_KEY.
DEV_PII_KEYS = "dev:ZGV2LXBpaS1rZXktMzItYnl0ZXMtY2hhbmdlLW1lISE="  # noqa: S105
SECRETS = {"SECRET_KEY": DEV_SECRET_KEY, "PII_KEYS": DEV_PII_KEYS}
# Encrypts the development backup repository; production needs its own (kept outside the repository).
DEV_BACKUP_CIPHER_PASS = "dev-backup-passphrase-change-me"  # noqa: S105  (refused in production)


class ConfigError(RuntimeError):
    """The environment describes a configuration we refuse to run with."""


def _bool(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    """Typed settings; field names are the environment variable names."""

    APP_ENV: str = "development"
    SECRET_KEY: str = DEV_SECRET_KEY
    LOG_LEVEL: str = "INFO"
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    WEB_CONCURRENCY: int = 2
    WEB_WORKER_CLASS: str = "gthread"
    WEB_THREADS: int = 8
    WEB_WORKER_CONNECTIONS: int = 1000
    WEB_KEEPALIVE: int = 75

    DATABASE_URL: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/shop"
    DATABASE_POOL_SIZE: int = 5
    CELERY_BROKER_URL: str = "amqp://guest:guest@127.0.0.1:5672//"
    CELERY_RESULT_BACKEND: str = ""
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    SERVICE_TIMEOUT: float = 2.0

    EMAIL_PROVIDER: str = "sandbox"
    PAYMENTS_PROVIDER: str = "sandbox"
    SHIPPING_PROVIDER: str = "sandbox"
    SEARCH_BACKEND: str = "postgres"
    STORAGE_BACKEND: str = "local"

    EMAIL_FROM: str = "Shop <no-reply@shop.localhost>"
    EMAIL_OUTBOX_DIR: str = "var/mail"
    EMAIL_RETRY_BACKOFF: float = 1.0
    EMAIL_MAX_RETRIES: int = 3
    # Seconds after an attempt began before the provider's "not accepted" is believed (docs/faults.md).
    EMAIL_ACCEPTANCE_LAG: float = 600.0
    # At most this many messages sent by one run of the emails task: its own and other queued ones.
    EMAIL_BATCH_SIZE: int = 10
    SENDGRID_API_KEY: str = ""
    SENDGRID_HOST: str = "https://api.sendgrid.com"
    SENDGRID_TIMEOUT: float = 10.0

    FRONTEND_URL: str = "http://localhost:3000"
    EMAIL_VERIFICATION_TTL: int = 86400

    OUTBOX_SWEEP_INTERVAL: float = 10.0
    # Seconds between beat sweeps of search marks no window's indexing task took (docs/orders.md).
    SEARCH_SWEEP_INTERVAL: float = 5.0
    OUTBOX_REPUBLISH_AFTER: float = 15.0
    OUTBOX_RETENTION_DAYS: int = 7
    # Outbox rows are published by a background thread per process (a response never waits for the
    # broker's confirm); "inline" publishes in the request thread after commit, as before.
    OUTBOX_PUBLISHER: str = "background"
    OUTBOX_QUEUE_SIZE: int = 10000
    OUTBOX_PUBLISH_BATCH: int = 100
    OUTBOX_PUBLISHER_THREADS: int = 2
    OUTBOX_FLUSH_SECONDS: float = 5.0
    OUTBOX_CONFIRM_TIMEOUT: float = 30.0
    TASK_QUEUE_TYPE: str = "quorum"
    TASK_DELIVERY_LIMIT: int = 10
    BEAT_SCHEDULE_FILE: str = "var/celerybeat-schedule"

    STORAGE_LOCAL_DIR: str = "var/storage"
    STORAGE_PUBLIC_URL: str = ""
    S3_BUCKET: str = "shop"
    S3_PREFIX: str = ""
    S3_ENDPOINT_URL: str = ""
    S3_REGION: str = "us-east-1"
    S3_ACCESS_KEY_ID: str = ""
    S3_SECRET_ACCESS_KEY: str = ""

    # Identity and access control
    ACCESS_TOKEN_TTL: int = 3600
    REFRESH_TOKEN_TTL: int = 604800
    MFA_TOKEN_TTL: int = 300
    LOGIN_MAX_FAILURES: int = 5
    LOCKOUT_SECONDS: int = 900
    SECURITY_ALERT_EMAIL: str = "security@shop.localhost"
    REQUIRE_MFA_FOR_ADMINS: bool = True
    TOTP_ISSUER: str = "Shop"
    RATE_LIMIT_DEFAULT: str = "100 per minute"
    RATE_LIMIT_AUTH: str = "10 per minute"
    CORS_ORIGINS: str = ""
    PII_KEYS: str = DEV_PII_KEYS
    PII_ACTIVE_KEY: str = ""
    OIDC_PROVIDER: str = "oidc"
    OIDC_ISSUER: str = ""
    OIDC_CLIENT_ID: str = ""
    OIDC_CLIENT_SECRET: str = ""
    OIDC_REDIRECT_BASE: str = "http://127.0.0.1:8000"
    SECURITY_EVENT_RETENTION_DAYS: int = 365
    # API keys: how long a verified key is served from Redis, and how often counted uses reach the rows
    API_KEY_CACHE_TTL: int = 60
    API_KEY_USAGE_FLUSH_INTERVAL: int = 60

    # Catalog
    CATALOG_CACHE_TTL: int = 60
    CATALOG_HTTP_MAX_AGE: int = 30
    CATALOG_SNAPSHOT_TTL: int = 604800
    CATALOG_RETRY_AFTER: int = 30
    ELASTICSEARCH_URL: str = "http://127.0.0.1:9200"
    ELASTICSEARCH_INDEX: str = "products"
    ELASTICSEARCH_API_KEY: str = ""
    SEARCH_TEXT_CONFIG: str = "english"
    IMAGE_MAX_BYTES: int = 5242880
    IMAGE_MAX_PIXELS: int = 40000000
    # Orders
    ORDER_PAYMENT_TIMEOUT: int = 1800
    ORDER_EXPIRY_INTERVAL: float = 60.0
    IDEMPOTENCY_TTL: int = 86400
    FULFILLMENT_EMAIL: str = "fulfilment@shop.localhost"
    TRACKING_URL: str = "https://www.ups.com/track?tracknum={tracking}"
    STRIPE_API_KEY: str = ""
    STRIPE_WEBHOOK_SECRET: str = ""
    STRIPE_API_BASE: str = ""
    STRIPE_TIMEOUT: float = 10.0
    SANDBOX_WEBHOOK_SECRET: str = "whsec_sandbox_development"  # noqa: S105  (sandbox: refused in production)
    SANDBOX_PAYMENT_LATENCY: float = 0.0
    SANDBOX_EMAIL_LATENCY: float = 0.0
    SANDBOX_DELIVERY_AFTER: float = 0.0
    UPS_WSDL_DIR: str = "integrations/shipping/wsdl"
    UPS_ENDPOINT: str = "https://onlinetools.ups.com/webservices"
    UPS_USERNAME: str = ""
    UPS_PASSWORD: str = ""
    UPS_ACCESS_KEY: str = ""
    UPS_ACCOUNT_NUMBER: str = ""
    UPS_TIMEOUT: float = 10.0
    SHIP_FROM: str = "Shop Warehouse;1 Depot Road;Atlanta;GA;30301;US"
    SHIPPING_RATE_CACHE_TTL: int = 86400
    SHIPPING_RATE_REFRESH_TOP: int = 50
    SHIPPING_RATE_WAIT: float = 3.0  # seconds a rate request waits on the cache for a worker's answer
    SHIPPING_RATE_RETRY_AFTER: int = 5  # Retry-After of a 503 rate answer, and how long an outage is remembered
    TRACKING_POLL_INTERVAL: float = 900.0
    BREAKER_FAIL_MAX: int = 5
    BREAKER_RESET_TIMEOUT: float = 30.0
    # Imports and exports
    IMPORT_INBOXES: str = ""
    IMPORT_POLL_INTERVAL: float = 30.0
    IMPORT_CHUNK_ROWS: int = 20000
    IMPORT_TASK_SECONDS: float = 40.0
    IMPORT_MAX_BYTES: int = 268435456
    IMPORT_REPORT_EMAIL: str = ""
    IMPORT_SFTP_KNOWN_HOSTS: str = ""
    IMPORT_SFTP_KEY_FILE: str = ""
    IMPORT_SFTP_PASSWORD: str = ""
    IMPORT_IMAGE_MAX_BYTES: int = 10485760
    IMPORT_IMAGE_ALLOW_PRIVATE: bool = False
    EXPORT_DESTINATIONS: str = ""
    EXPORT_NIGHTLY_HOUR: int = 2
    # Retention (docs/retention.md); audit events use SECURITY_EVENT_RETENTION_DAYS, idempotency keys IDEMPOTENCY_TTL
    RETENTION_USER_INACTIVE_DAYS: int = 730
    RETENTION_ORDER_DAYS: int = 2557
    RETENTION_TOKEN_DAYS: int = 7
    RETENTION_EMAIL_DAYS: int = 90
    RETENTION_WEBHOOK_DAYS: int = 90
    RETENTION_IMPORT_DAYS: int = 90
    RETENTION_EXPORT_DAYS: int = 90
    RETENTION_STAGED_IMAGE_DAYS: int = 7
    RETENTION_CHUNK: int = 1000
    RETENTION_TASK_SECONDS: float = 60.0
    RETENTION_PAUSE_RATIO: float = 0.0
    # Faults
    OUTAGE_RETRY_AFTER: int = 5  # seconds, in the Retry-After of a 503 while PostgreSQL or Redis is down
    WORKER_SHUTDOWN_GRACE: float = 20.0  # seconds a stopping worker lets its tasks finish before requeueing them
    CELERY_DELAYED_QUEUE_TYPE: str = "quorum"  # Celery's 28 delayed-delivery queues: quorum or classic
    IMPORT_STUCK_AFTER: float = 1800.0  # seconds without progress after which an import job is ended as failed
    # Parallel import merge (docs/imports.md): how many load tasks merge one file's chunks at once
    IMPORT_MERGE_PARALLEL: int = 2
    # GraphQL and real-time
    GRAPHQL_MAX_DEPTH: int = 8
    GRAPHQL_MAX_COST: int = 5000
    WS_HOST: str = "127.0.0.1"
    WS_PORT: int = 8001
    WS_MAX_CONNECTIONS_PER_USER: int = 5
    WS_SEND_QUEUE: int = 256
    WS_PING_INTERVAL: float = 20.0
    WS_AUTH_TIMEOUT: float = 5.0
    WS_REVOCATION_CHECK_INTERVAL: float = 5.0
    WS_REPLAY_LIMIT: int = 1000
    # Operations
    WORKER_METRICS_PORT: int = 9808
    WORKER_METRICS_ADDRESS: str = "127.0.0.1"
    WORKER_METRICS_DIR: str = "var/worker-metrics"
    BEAT_LOCK_TIMEOUT: int = 30
    FLOWER_ADDRESS: str = "127.0.0.1"
    FLOWER_PORT: int = 5555
    FLOWER_BASIC_AUTH: str = ""
    FLOWER_AUTH: str = ""
    FLOWER_AUTH_PROVIDER: str = ""
    FLOWER_BROKER_API: str = ""
    # Backups (pgBackRest)
    BACKUP_DATABASE_URL: str = ""
    BACKUP_PG_DATA: str = ""
    BACKUP_PG_SOCKET_DIR: str = "/var/run/postgresql"
    BACKUP_PG_BINDIR: str = ""
    BACKUP_RUN_AS: str = ""
    BACKUP_STANZA: str = "shop"
    BACKUP_REPO_TYPE: str = "posix"
    BACKUP_REPO_PATH: str = "var/backups/repo"
    BACKUP_S3_BUCKET: str = ""
    BACKUP_S3_CA_FILE: str = ""
    BACKUP_S3_VERIFY_TLS: bool = True
    BACKUP_CIPHER_PASS: str = DEV_BACKUP_CIPHER_PASS
    BACKUP_WORK_DIR: str = "var/backups"
    BACKUP_RETENTION_FULL: int = 2
    BACKUP_RETENTION_DIFF: int = 7
    BACKUP_RETENTION_ARCHIVE: int = 2
    BACKUP_PROCESS_MAX: int = 1
    BACKUP_IO_TIMEOUT: int = 60
    BACKUP_HOUR: int = 1
    BACKUP_CHECK_INTERVAL: float = 300.0
    BACKUP_RETRY_AFTER: int = 300
    BACKUP_TIME_LIMIT: int = 1500
    BACKUP_DRILL_PORT: int = 54329
    BACKUP_DRILL_DIR: str = "var/backups/drill"
    BACKUP_ALERT_EMAIL: str = "ops@shop.localhost"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            if field.name not in environ:
                continue
            raw = environ[field.name]
            kind = type(field.default)
            try:
                values[field.name] = _bool(raw) if kind is bool else kind(raw)
            except ValueError as exc:
                raise ConfigError(f"{field.name}: {exc}") from None
        settings = cls(**values)
        settings.check_choices()
        return settings

    @property
    def production(self) -> bool:
        return self.APP_ENV == "production"

    def check_choices(self) -> None:
        """Refuse an integration name we do not know."""
        for name, choices in INTEGRATIONS.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        for name in ("TASK_QUEUE_TYPE", "CELERY_DELAYED_QUEUE_TYPE"):
            if getattr(self, name) not in ("quorum", "classic"):
                raise ConfigError(f"{name} must be quorum or classic")
        if self.BACKUP_REPO_TYPE not in ("posix", "s3"):
            raise ConfigError(f"BACKUP_REPO_TYPE must be posix or s3, not {self.BACKUP_REPO_TYPE!r}")
        if self.WEB_WORKER_CLASS not in ("sync", "gthread", "gevent"):
            raise ConfigError(f"WEB_WORKER_CLASS must be sync, gthread or gevent, not {self.WEB_WORKER_CLASS!r}")
        if self.OUTBOX_PUBLISHER not in ("background", "inline"):
            raise ConfigError(f"OUTBOX_PUBLISHER must be background or inline, not {self.OUTBOX_PUBLISHER!r}")

    def problems(self) -> list[str]:
        """What makes these settings unfit for production, one line each."""
        found = [f"{name} has its development default" for name, default in SECRETS.items()
                 if getattr(self, name) == default]
        found += [f"{name}={getattr(self, name)} is a sandbox integration"
                  for name in INTEGRATIONS if getattr(self, name) in SANDBOXES]
        if len(self.SECRET_KEY) < 32:
            found.append("SECRET_KEY is shorter than 32 characters (it signs access tokens with HS256)")
        if not self.PII_KEYS.strip():
            found.append("PII_KEYS is empty")
        if self.OIDC_ISSUER and not (self.OIDC_CLIENT_ID and self.OIDC_CLIENT_SECRET):
            found.append("OIDC_ISSUER is set without OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
        if self.OIDC_ISSUER and not self.OIDC_ISSUER.startswith("https://"):
            found.append("OIDC_ISSUER must be an https:// URL")
        if self.EMAIL_PROVIDER == "sendgrid" and not self.SENDGRID_API_KEY:
            found.append("SENDGRID_API_KEY is empty while EMAIL_PROVIDER=sendgrid")
        found += self._vendor_secret_problems()
        if self.BACKUP_CIPHER_PASS in ("", DEV_BACKUP_CIPHER_PASS):
            found.append("BACKUP_CIPHER_PASS is empty or has its development default (backups must be encrypted)")
        return found

    def _vendor_secret_problems(self) -> list[str]:
        """Empty credentials of the chosen payment and shipping vendors."""
        needed = {("PAYMENTS_PROVIDER", "stripe"): ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"),
                  ("SHIPPING_PROVIDER", "ups"): ("UPS_USERNAME", "UPS_PASSWORD", "UPS_ACCESS_KEY",
                                                 "UPS_ACCOUNT_NUMBER")}
        return [f"{name} is empty while {choice}={vendor}" for (choice, vendor), names in needed.items()
                if getattr(self, choice) == vendor for name in names if not getattr(self, name)]

    def check_production(self) -> None:
        """Raise ConfigError naming every problem when APP_ENV=production."""
        if self.production and (found := self.problems()):
            raise ConfigError("refusing to start with APP_ENV=production: " + "; ".join(found))

    def path(self, value: str) -> Path:
        """A configured path, relative ones taken from the project folder."""
        path = Path(value)
        return path if path.is_absolute() else ROOT / path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    settings = Settings.from_env()
    settings.check_production()
    return settings
