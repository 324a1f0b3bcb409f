"""An S3-compatible server for tests: moto in server mode on a loopback port."""

from __future__ import annotations

from moto.server import ThreadedMotoServer


class S3Twin:
    """moto's threaded server; `endpoint` is its URL, buckets are made with `bucket()`."""

    def __init__(self):
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> S3Twin:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.stop()

    def client(self):
        from integrations.storage.s3 import s3_client
        return s3_client(self.endpoint, "us-east-1", "test-key", "test-secret")

    def bucket(self, name: str) -> str:
        """Create `name` (empty) and return it."""
        client = self.client()
        if any(b["Name"] == name for b in client.list_buckets()["Buckets"]):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
        else:
            client.create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """Settings that point the app's object store at this server."""
        return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": self.endpoint,
                "S3_ACCESS_KEY_ID": "test-key", "S3_SECRET_ACCESS_KEY": "test-secret"}
