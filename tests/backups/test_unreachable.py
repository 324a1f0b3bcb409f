"""A repository that cannot be reached: the job fails loudly (metric, one alert email), is retried later,
and nothing else stops working."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import create_engine, text

from tests.backups.conftest import free_port
from tests.conftest import start_worker
from tests.helpers import mails, wait_for


def failed_runs(settings, job: str) -> int:
    engine = create_engine(settings.DATABASE_URL)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM backup_runs WHERE job = :j AND status = 'failed'"),
                                {"j": job}).scalar()
    finally:
        engine.dispose()


def test_an_unreachable_repository_fails_loudly_and_is_retried(source, settings, celery_app, client, mail_dir,
                                                                tmp_path):
    nowhere = replace(source.settings, BACKUP_REPO_TYPE="s3", BACKUP_REPO_PATH="/shop", BACKUP_S3_BUCKET="gone",
                      S3_ENDPOINT_URL=f"https://127.0.0.1:{free_port()}", S3_ACCESS_KEY_ID="key",
                      S3_SECRET_ACCESS_KEY="secret", BACKUP_IO_TIMEOUT=1,
                      BACKUP_RETRY_AFTER=1, BACKUP_WORK_DIR=str(source.base / "work-gone"))
    env = {**source.env(nowhere), "S3_ENDPOINT_URL": nowhere.S3_ENDPOINT_URL, "S3_ACCESS_KEY_ID": "key",
           "S3_SECRET_ACCESS_KEY": "secret"}
    worker = start_worker(tmp_path, **env)
    try:
        app = celery_app
        app.send_task("tasks.backups.diff")
        wait_for(lambda: failed_runs(settings, "diff") >= 2, 120, interval=0.5,
                 message="the diff job to fail and be retried")

        scrape = client.get("/metrics").get_data(as_text=True)
        count = next(line for line in scrape.splitlines()
                     if line.startswith('shop_backup_job_failures_total{job="diff"}'))
        assert float(count.split()[-1]) >= 2
        alerts = wait_for(lambda: mails(mail_dir, to=settings.BACKUP_ALERT_EMAIL), 30, message="the alert email")
        assert len(alerts) == 1  # one per run of failures, not one per retry
        assert "diff failed" in alerts[0]["Subject"]
        assert "unable to connect" in alerts[0].get_body(("plain",)).get_content()
        assert "retrying later" in worker.log()

        # Nothing else broke: the database takes writes, the API answers, the worker still runs tasks.
        assert source.sql("SELECT 1")[0][0] == 1
        assert client.get("/readyz").status_code == 200
        assert failed_runs(settings, "check") == 0
    finally:
        worker.stop()
