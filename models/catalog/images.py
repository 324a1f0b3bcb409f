"""Product images: one path accepts image bytes, whether uploaded or fetched from a feed.

`check_image`: the declared content type must be one we accept AND match
what the bytes are; the image must decode fully (`verify` then `load`) and
stay under the pixel limit, which refuses decompression bombs before they
are expanded.

`accept_image` (workers): check, put into object storage (an atomic write
under a key made from the image's id), then the image row and search
indexing in one transaction; if the product went meanwhile, the object is
removed again. Feed images go straight through it; an upload is checked in
the request and committed to `staged_images` with an outbox row
(`stage_upload`), and `store_staged` hands it to `accept_image`. So no
request waits on storage and no transaction is open during storage I/O.
Removing images queues the deletion of their files in the same transaction
(`actions.queue_file_deletion`), retried by the worker like any storage call.
"""

from __future__ import annotations

import io
import logging
import uuid
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, undefer

from integrations.storage import Storage
from models.catalog.actions import get_product, queue_file_deletion
from models.catalog.indexing import queue_indexing
from models.catalog.tables import Product, ProductImage, StagedImage
from models.db import Database
from models.errors import InvalidRequest, NotFound
from models import task_names as names
from models.outbox import enqueue
from models.users.permissions import Actor, authorize

log = logging.getLogger(__name__)

STORE_STAGED = names.STORE_IMAGE

# Pillow format → (content type, file extension)
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp"),
           "GIF": ("image/gif", "gif")}
CONTENT_TYPES = {content_type for content_type, _ in FORMATS.values()}
EXTENSIONS = dict(FORMATS.values())


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


def upload_limits(settings) -> Limits:
    return Limits(settings.IMAGE_MAX_BYTES, settings.IMAGE_MAX_PIXELS)


def feed_limits(settings) -> Limits:
    return Limits(settings.IMPORT_IMAGE_MAX_BYTES, settings.IMAGE_MAX_PIXELS)


@dataclass(frozen=True)
class CheckedImage:
    """Bytes that passed `check_image`, with what they really are."""

    data: bytes
    content_type: str
    extension: str


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message, {"file": [message]})


def check_image(data: bytes, declared: str, max_bytes: int, max_pixels: int) -> tuple[str, str]:
    """The (content type, extension) the bytes really are; raises InvalidRequest naming `file` otherwise."""
    if not data:
        raise _refuse("the file is empty")
    if len(data) > max_bytes:
        raise _refuse(f"the file is larger than {max_bytes} bytes")
    if declared not in CONTENT_TYPES:
        raise _refuse(f"content type {declared or 'missing'} is not accepted; use one of "
                      + ", ".join(sorted(CONTENT_TYPES)))
    kind = _decode(data, max_pixels)
    if kind not in FORMATS:
        raise _refuse(f"{kind} images are not accepted")
    content_type, extension = FORMATS[kind]
    if content_type != declared:
        raise _refuse(f"the file says {declared} but its bytes are {content_type}")
    return content_type, extension


def checked(data: bytes, declared: str, limits: Limits) -> CheckedImage:
    """`check_image` with `limits`, keeping the bytes beside the verdict."""
    return CheckedImage(data, *check_image(data, declared, limits.max_bytes, limits.max_pixels))


def _decode(data: bytes, max_pixels: int) -> str:
    """The image's format, after checking its size from the header and then decoding it fully."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                if image.width * image.height > max_pixels:  # before any pixel is expanded
                    raise _refuse(f"the image has more than {max_pixels} pixels")
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        return kind
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(f"the image has more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refuse("the file is not an image we can read") from None


def stage_upload(session: Session, actor: Actor, product_id: uuid.UUID, image: CheckedImage,
                 alt_text: str) -> StagedImage:
    """Commit checked upload bytes with an outbox row; a worker stores them (`store_staged`)."""
    authorize(actor, "products:update")
    get_product(session, product_id)
    staged = StagedImage(id=uuid.uuid4(), product_id=product_id, content_type=image.content_type,
                         alt_text=alt_text, data=image.data)
    session.add(staged)
    enqueue(session, STORE_STAGED, staged_id=staged.id)
    return staged


def store_staged(db: Database, storage: Storage, staged_id: uuid.UUID, limits: Limits) -> str:
    """Put a staged upload into storage and make it the product's last image; idempotent."""
    with db.session() as session:
        staged = session.scalar(select(StagedImage).options(undefer(StagedImage.data))
                                .where(StagedImage.id == staged_id))
        if staged is None:
            return "already handled"  # stored by an earlier delivery, or its product was deleted
    try:
        image = accept_image(db, storage, staged.product_id, staged.id, staged.data, staged.content_type,
                             limits, alt_text=staged.alt_text)
    except InvalidRequest as exc:  # checked in the request already: only a change of limits gets here
        log.warning("staged image refused", extra={"staged_id": str(staged_id), "error": exc.message})
        with db.session() as session:
            session.execute(delete(StagedImage).where(StagedImage.id == staged_id))
        return "refused"
    return "stored" if image is not None else "product gone"


def image_key(product_id: uuid.UUID, image_id: uuid.UUID, content_type: str) -> str:
    """Where an image's file is stored (retention deletes a stale staged upload's file there too)."""
    return f"products/{product_id}/{image_id}.{EXTENSIONS[content_type]}"


def accept_image(db: Database, storage: Storage, product_id: uuid.UUID, image_id: uuid.UUID, data: bytes,
                 declared: str, limits: Limits, alt_text: str = "", source_url: str | None = None
                 ) -> ProductImage | None:
    """Check image bytes, store them and add the image (last) to the product, queueing its reindexing.

    Safe to repeat with the same `image_id`. None when the product no longer exists (nothing is left in
    storage); InvalidRequest naming `file` when the bytes are not an image we accept.
    """
    image = checked(data, declared, limits)
    key = image_key(product_id, image_id, image.content_type)
    storage.put(key, image.data, image.content_type)  # no transaction is open during storage I/O
    with db.session() as session:
        # Key-share lock: a product being deleted now is waited for, and then seen gone.
        product = session.get(Product, product_id, with_for_update={"key_share": True})
        row = session.get(ProductImage, image_id) if product is not None else None
        if product is not None and row is None:
            position = session.scalar(select(func.coalesce(func.max(ProductImage.position) + 1, 0))
                                      .where(ProductImage.product_id == product_id))
            row = ProductImage(id=image_id, product_id=product_id, storage_key=key, source_url=source_url,
                               content_type=image.content_type, alt_text=alt_text, position=position)
            session.add(row)
            session.flush()
            queue_indexing(session, [product_id])
        session.execute(delete(StagedImage).where(StagedImage.id == image_id))
    if product is None:
        storage.delete(key)
    return row


def get_image(session: Session, product_id: uuid.UUID, image_id: uuid.UUID) -> ProductImage:
    image = session.get(ProductImage, image_id)
    if image is None or image.product_id != product_id:
        raise NotFound("image not found")
    return image


def delete_image(session: Session, actor: Actor, product_id: uuid.UUID, image_id: uuid.UUID) -> None:
    """Remove the image's row and queue the deletion of its file."""
    authorize(actor, "products:update")
    image = get_image(session, product_id, image_id)
    session.delete(image)
    session.flush()
    queue_indexing(session, [product_id])
    queue_file_deletion(session, [image.storage_key])
