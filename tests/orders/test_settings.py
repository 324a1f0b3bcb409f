"""Production refuses Stripe or UPS without their credentials."""

import pytest

from settings import ConfigError, Settings

pytestmark = pytest.mark.pure


def test_production_refuses_stripe_and_ups_without_credentials():
    settings = Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "EMAIL_PROVIDER": "sendgrid",
                                  "SENDGRID_API_KEY": "SG.x", "PAYMENTS_PROVIDER": "stripe",
                                  "SHIPPING_PROVIDER": "ups", "STRIPE_API_KEY": "sk_live_x"})
    with pytest.raises(ConfigError) as refused:
        settings.check_production()
    message = str(refused.value)
    assert "STRIPE_WEBHOOK_SECRET is empty while PAYMENTS_PROVIDER=stripe" in message
    assert "UPS_PASSWORD is empty while SHIPPING_PROVIDER=ups" in message
    assert "STRIPE_API_KEY is empty" not in message


def test_every_order_beat_job_names_a_registered_task(settings, celery_app):
    from scheduler import order_jobs
    app = celery_app

    app.loader.import_default_modules()
    jobs = order_jobs(settings)
    assert {"orders-expire-unpaid", "orders-poll-tracking", "shipping-refresh-rates"} <= set(jobs)
    assert all(job["task"] in app.tasks for job in jobs.values())
