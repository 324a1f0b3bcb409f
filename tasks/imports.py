"""The imports queue: inbox polling, the import pipeline's steps, storing images (fetched or uploaded), exports."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import uuid
from functools import lru_cache

from imports import exports, images, pipeline
from integrations.storage import make_storage
from models.catalog import images as catalog_images
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
    """Start a job for every new file in the configured inboxes; end the jobs that stopped making progress."""
    pipeline.reap_stuck(runtime.database(), get_settings())
    return pipeline.discover(runtime.database(), get_settings())


@lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def give_back_memory() -> None:
    """Hand the heap a file's chunks left free back to the system.

    Without it a pool process keeps its peak after a scan or load, and the
    next big step lands on the other one: both sit at their peak while idle.
    """
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):  # glibc only
        libc.malloc_trim(0)


@app.task(base=ImportStepTask, name="tasks.imports.scan_file")
def scan_file(job_id: str) -> str:
    """Claim, checksum and validate the job's file."""
    try:
        return pipeline.scan(runtime.database(), get_settings(), job_id)
    finally:
        give_back_memory()


@app.task(base=ImportStepTask, name="tasks.imports.load_chunks")
def load_chunks(job_id: str, part: int = 0, parts: int = 1) -> str:
    """Merge the next chunks of the job's file (those of one part, when several merge at once)."""
    try:
        return pipeline.load(runtime.database(), get_settings(), job_id, part, parts)
    finally:
        give_back_memory()


class FinishTask(ShopTask):
    """A finish step that failed for good still gives its job a final status (the file stays where it is)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        pipeline.finish_anyway(runtime.database(), kwargs["job_id"], f"finish failed: {exc!r}"[:500])


@app.task(base=FinishTask, name="tasks.imports.finish_import")
def finish_import(job_id: str) -> str:
    """Move the file out, write the reject report, email the summary."""
    return pipeline.finish(runtime.database(), get_settings(), job_id)


@app.task(base=ShopTask, name="tasks.imports.fetch_images")
def fetch_images(product_id: str, urls: list[str]) -> int:
    """Fetch a product's new images into object storage."""
    return images.fetch_product_images(runtime.database(), get_settings(), product_id, urls)


@app.task(base=ShopTask, name="tasks.imports.store_image")
def store_image(staged_id: str) -> str:
    """Put an uploaded image (staged in the database) into object storage and add it to its product."""
    settings = get_settings()
    return catalog_images.store_staged(runtime.database(), make_storage(settings), uuid.UUID(staged_id),
                                       catalog_images.upload_limits(settings))


@app.task(base=ShopTask, name="tasks.imports.run_export")
def run_export(export_id: str) -> str:
    """Write an export job's file to its destination."""
    return exports.run(runtime.database(), get_settings(), export_id)


@app.task(base=ShopTask, name="tasks.imports.nightly_exports")
def nightly_exports() -> int:
    """Queue the nightly products and orders exports to the first destination."""
    return exports.queue_nightly(runtime.database(), get_settings())
