import pytest

from settings import DEV_SECRET_KEY, ConfigError, Settings

pytestmark = pytest.mark.pure


def test_defaults_point_at_the_local_services():
    settings = Settings.from_env({})
    assert settings.DATABASE_URL == "postgresql+psycopg2://postgres@127.0.0.1:5432/shop"
    assert settings.CELERY_BROKER_URL == "amqp://guest:guest@127.0.0.1:5672//"
    assert settings.REDIS_URL == "redis://127.0.0.1:6379/0"
    assert settings.EMAIL_PROVIDER == "sandbox"
    assert settings.EMAIL_OUTBOX_DIR == "var/mail"


def test_values_are_typed_from_the_environment():
    settings = Settings.from_env({"PORT": "9000", "SERVICE_TIMEOUT": "0.5", "EMAIL_PROVIDER": "sendgrid"})
    assert (settings.PORT, settings.SERVICE_TIMEOUT, settings.EMAIL_PROVIDER) == (9000, 0.5, "sendgrid")


def test_a_malformed_number_is_named():
    with pytest.raises(ConfigError, match="PORT"):
        Settings.from_env({"PORT": "eighty"})


def test_an_unknown_integration_is_refused():
    with pytest.raises(ConfigError, match="EMAIL_PROVIDER must be one of sandbox, sendgrid"):
        Settings.from_env({"EMAIL_PROVIDER": "smtp"})


def test_production_refuses_default_secret_and_sandboxes_and_names_them():
    settings = Settings.from_env({"APP_ENV": "production"})
    with pytest.raises(ConfigError) as refused:
        settings.check_production()
    message = str(refused.value)
    for name in ("SECRET_KEY", "EMAIL_PROVIDER=sandbox", "PAYMENTS_PROVIDER=sandbox", "SHIPPING_PROVIDER=sandbox"):
        assert name in message


def test_production_refuses_sendgrid_without_a_key():
    settings = Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "EMAIL_PROVIDER": "sendgrid",
                                  "PAYMENTS_PROVIDER": "stripe", "SHIPPING_PROVIDER": "ups"})
    with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
        settings.check_production()


VENDOR_SECRETS = {"STRIPE_API_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x", "UPS_USERNAME": "u",
                  "UPS_PASSWORD": "p", "UPS_ACCESS_KEY": "k", "UPS_ACCOUNT_NUMBER": "a"}


def test_production_starts_when_configured():
    settings = Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "EMAIL_PROVIDER": "sendgrid",
                                  "SENDGRID_API_KEY": "SG.x", "PAYMENTS_PROVIDER": "stripe",
                                  "SHIPPING_PROVIDER": "ups", "PII_KEYS": "k1:" + "QUJD" * 10 + "QUI=",
                                  "BACKUP_CIPHER_PASS": "b" * 40, **VENDOR_SECRETS})
    settings.check_production()
    assert settings.SECRET_KEY != DEV_SECRET_KEY


def test_create_app_refuses_production_defaults():
    from web import create_app

    with pytest.raises(ConfigError, match="SECRET_KEY has its development default"):
        create_app(Settings.from_env({"APP_ENV": "production"}))
