"""Fetching a product's images from the URLs of a feed, refusing what could reach inside our network.

Only http(s); every address the host resolves to must be public (unless
IMPORT_IMAGE_ALLOW_PRIVATE, for tests); no redirects are followed; the body
must be an image no larger than IMPORT_IMAGE_MAX_BYTES. What is fetched is
then accepted exactly as an upload is (`models.catalog.images.accept_image`:
the Pillow check, storage, search indexing).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import uuid
from urllib.parse import urlsplit

import urllib3
from sqlalchemy import select

from integrations.storage import make_storage
from models.catalog.images import CONTENT_TYPES, accept_image, feed_limits
from models.catalog.tables import ProductImage
from models.db import Database
from models.errors import InvalidRequest
from settings import Settings

log = logging.getLogger(__name__)

class ImageRefused(Exception):
    """The URL or its answer is not an image we may store."""


def check_url(url: str, allow_private: bool = False) -> None:
    """Refuse non-http(s) URLs and hosts that resolve to private, loopback or otherwise special addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageRefused(f"only http(s) URLs are fetched: {url[:200]}")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ImageRefused(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not ip.is_global and not allow_private:
            raise ImageRefused(f"{parts.hostname} resolves to a non-public address ({ip})")


def download(url: str, max_bytes: int, timeout: float, allow_private: bool = False) -> tuple[bytes, str]:
    """The image's bytes and content type."""
    check_url(url, allow_private)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    response = http.request("GET", url, preload_content=False, redirect=False)
    try:
        if response.status != 200:
            raise ImageRefused(f"{url[:200]} answered {response.status}")
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise ImageRefused(f"{url[:200]} is not an image ({content_type or 'no content type'})")
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            raise ImageRefused(f"{url[:200]} is larger than {max_bytes} bytes")
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ImageRefused(f"{url[:200]} is larger than {max_bytes} bytes")
        return body, content_type
    finally:
        response.release_conn()


def fetch_product_images(db: Database, settings: Settings, product_id: str, urls: list[str]) -> int:
    """Store each URL's image for the product once; refused URLs and images are logged and skipped."""
    storage = make_storage(settings)
    stored = 0
    for url in urls:
        with db.session() as session:
            known = session.scalar(select(ProductImage.id).where(
                ProductImage.product_id == uuid.UUID(product_id), ProductImage.source_url == url))
        if known:
            continue
        try:
            body, content_type = download(url, settings.IMPORT_IMAGE_MAX_BYTES, settings.SERVICE_TIMEOUT * 5,
                                          settings.IMPORT_IMAGE_ALLOW_PRIVATE)
            # The image's id comes from the product and URL, so a repeated delivery stores the same object.
            image_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{product_id} {url}")
            image = accept_image(db, storage, uuid.UUID(product_id), image_id, body, content_type,
                                 feed_limits(settings), source_url=url)
        except (ImageRefused, urllib3.exceptions.HTTPError) as exc:
            log.warning("image refused", extra={"product_id": product_id, "url": url[:200], "error": str(exc)})
            continue
        except InvalidRequest as exc:
            log.warning("image refused", extra={"product_id": product_id, "url": url[:200], "error": exc.message})
            continue
        if image is None:
            return stored  # the product was deleted meanwhile
        stored += 1
    return stored
