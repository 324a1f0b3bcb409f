"""`make_storage(settings)`: the object store STORAGE_BACKEND names (images, labels, reports)."""

from __future__ import annotations

from integrations.storage.base import ObjectMissing, Storage, StoredObject, check_key

__all__ = ["ObjectMissing", "Storage", "StoredObject", "check_key", "make_storage"]


def make_storage(settings) -> Storage:
    if settings.STORAGE_BACKEND == "s3":
        from integrations.storage.s3 import S3Storage, s3_client

        client = s3_client(settings.S3_ENDPOINT_URL, settings.S3_REGION, settings.S3_ACCESS_KEY_ID,
                           settings.S3_SECRET_ACCESS_KEY, settings.SERVICE_TIMEOUT * 5)
        return S3Storage(client, settings.S3_BUCKET, settings.S3_PREFIX, settings.STORAGE_PUBLIC_URL)
    from integrations.storage.local import LocalStorage

    return LocalStorage(settings.path(settings.STORAGE_LOCAL_DIR), settings.STORAGE_PUBLIC_URL or "/media")
