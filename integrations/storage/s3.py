"""Object storage in an S3 bucket through boto3; any S3-compatible endpoint works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from integrations.errors import PermanentError, TransientError
from integrations.storage.base import ObjectMissing, Storage, StoredObject, check_key

MISSING = {"NoSuchKey", "404", "NotFound"}
PERMANENT = {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName"}


def s3_client(endpoint_url: str = "", region: str = "us-east-1", access_key_id: str = "",
              secret_access_key: str = "", timeout: float = 10.0):
    """A boto3 S3 client; empty credentials fall back to boto3's own chain (roles, profiles)."""
    credentials = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key} \
        if access_key_id else {}
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else None)
    return boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region, config=config, **credentials)


def _translate(exc: Exception, key: str = "") -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in MISSING:
            return ObjectMissing(key)
        if code in PERMANENT:
            return PermanentError(f"s3: {code}")
    return TransientError(f"s3: {exc}")


class S3Storage(Storage):
    def __init__(self, client, bucket: str, prefix: str = "", public_url: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.public_url = public_url.rstrip("/")

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            if isinstance(data, bytes):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
            else:
                self.client.upload_fileobj(data, self.bucket, self._key(key), ExtraArgs=extra)
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, key) from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, key) from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except (BotoCoreError, ClientError) as exc:
            if isinstance(_translate(exc, key), ObjectMissing):
                return False
            raise _translate(exc, key) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, key) from exc

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"][len(self.prefix):], item["Size"], item.get("LastModified"))
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc) from exc

    def move(self, source: str, target: str) -> None:
        # S3 has no rename: copy, then delete. A crash between the two leaves both,
        # which callers treat as "already moved" by checking the target first.
        try:
            self.client.copy({"Bucket": self.bucket, "Key": self._key(source)}, self.bucket, self._key(target))
            self.client.delete_object(Bucket=self.bucket, Key=self._key(source))
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, source) from exc

    def url(self, key: str, expires: int = 3600) -> str:
        if self.public_url:
            return f"{self.public_url}/{self._key(key)}"
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires)
