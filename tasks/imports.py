"""The imports queue: inbox polling, the import pipeline's steps, image fetching and exports."""

from __future__ import annotations

import logging

from imports import exports, images, pipeline
from settings import get_settings
from tasks import app, runtime
from tasks.base import ShopTask

log = logging.getLogger(__name__)


class ImportStepTask(ShopTask):
    """A pipeline step that failed for good marks its job failed, so no job stays queued or running forever."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        pipeline.fail(runtime.database(), kwargs["job_id"], f"internal error: {exc!r}"[:500])


@app.task(base=ShopTask, name="tasks.imports.poll_inboxes")
def poll_inboxes() -> int:
    """Start a job for every new file in the configured inboxes."""
    return pipeline.discover(runtime.database(), get_settings())


@app.task(base=ImportStepTask, name="tasks.imports.scan_file")
def scan_file(job_id: str) -> str:
    """Claim, checksum and validate the job's file."""
    return pipeline.scan(runtime.database(), get_settings(), job_id)


@app.task(base=ImportStepTask, name="tasks.imports.load_chunks")
def load_chunks(job_id: str) -> str:
    """Merge the next chunks of the job's file."""
    return pipeline.load(runtime.database(), get_settings(), job_id)


@app.task(base=ShopTask, name="tasks.imports.finish_import")
def finish_import(job_id: str) -> str:
    """Move the file out, write the reject report, email the summary."""
    return pipeline.finish(runtime.database(), get_settings(), job_id)


@app.task(base=ShopTask, name="tasks.imports.fetch_images")
def fetch_images(product_id: str, urls: list[str]) -> int:
    """Fetch a product's new images into object storage."""
    return images.fetch_product_images(runtime.database(), get_settings(), product_id, urls)


@app.task(base=ShopTask, name="tasks.imports.run_export")
def run_export(export_id: str) -> str:
    """Write an export job's file to its destination."""
    return exports.run(runtime.database(), get_settings(), export_id)


@app.task(base=ShopTask, name="tasks.imports.nightly_exports")
def nightly_exports() -> int:
    """Queue the nightly products and orders exports to the first destination."""
    return exports.queue_nightly(runtime.database(), get_settings())
