"""The imports queue: inbox polling, the import pipeline's steps, storing images (fetched or uploaded), exports."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import uuid
from functools import lru_cache

from celery import shared_task

from imports import exports, images, pipeline
from models import task_names as names
from models.catalog import images as catalog_images
from tasks.base import ShopTask

log = logging.getLogger(__name__)


class ImportStepTask(ShopTask):
    """A pipeline step that failed for good marks its job failed, so no job stays queued or running forever."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        pipeline.fail(self.shop.db, kwargs["job_id"], f"internal error: {exc!r}"[:500])


@shared_task(base=ShopTask, bind=True, name=names.POLL_INBOXES)
def poll_inboxes(self) -> int:
    """Start a job for every new file in the configured inboxes; end the jobs that stopped making progress."""
    pipeline.reap_stuck(self.shop.db, self.shop.settings)
    return pipeline.discover(self.shop.db, self.shop.settings)


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


@shared_task(base=ImportStepTask, bind=True, name=names.SCAN_FILE)
def scan_file(self, job_id: str) -> str:
    """Claim, checksum and validate the job's file."""
    try:
        return pipeline.scan(self.shop.db, self.shop.settings, job_id)
    finally:
        give_back_memory()


@shared_task(base=ImportStepTask, bind=True, name=names.LOAD_CHUNKS)
def load_chunks(self, job_id: str, part: int = 0, parts: int = 1) -> str:
    """Merge the next chunks of the job's file (those of one part, when several merge at once)."""
    try:
        return pipeline.load(self.shop.db, self.shop.settings, job_id, part, parts)
    finally:
        give_back_memory()


class FinishTask(ShopTask):
    """A finish step that failed for good still gives its job a final status (the file stays where it is)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        pipeline.finish_anyway(self.shop.db, kwargs["job_id"], f"finish failed: {exc!r}"[:500])


@shared_task(base=FinishTask, bind=True, name=names.FINISH_IMPORT)
def finish_import(self, job_id: str) -> str:
    """Move the file out, write the reject report, email the summary."""
    return pipeline.finish(self.shop.db, self.shop.settings, job_id)


@shared_task(base=ShopTask, bind=True, name=names.FETCH_IMAGES)
def fetch_images(self, product_id: str, urls: list[str]) -> int:
    """Fetch a product's new images into object storage."""
    return images.fetch_product_images(self.shop.db, self.shop.settings, product_id, urls)


@shared_task(base=ShopTask, bind=True, name=names.STORE_IMAGE)
def store_image(self, staged_id: str) -> str:
    """Put an uploaded image (staged in the database) into object storage and add it to its product."""
    return catalog_images.store_staged(self.shop.db, self.shop.storage, uuid.UUID(staged_id),
                                       catalog_images.upload_limits(self.shop.settings))


@shared_task(base=ShopTask, bind=True, name=names.RUN_EXPORT)
def run_export(self, export_id: str) -> str:
    """Write an export job's file to its destination."""
    return exports.run(self.shop.db, self.shop.settings, export_id)


@shared_task(base=ShopTask, bind=True, name=names.NIGHTLY_EXPORTS)
def nightly_exports(self) -> int:
    """Queue the nightly products and orders exports to the first destination."""
    return exports.queue_nightly(self.shop.db, self.shop.settings)
