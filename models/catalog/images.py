"""Product images: the bytes' real type checked with Pillow, then stored in object storage.

The declared content type must be one we accept AND match what the bytes
are; the image must decode fully (`verify` then `load`) and stay under the
pixel limit, which refuses decompression bombs before they are expanded.
"""

from __future__ import annotations

import io
import uuid
import warnings

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations.storage import Storage
from models.catalog.actions import get_product
from models.catalog.indexing import queue_indexing
from models.catalog.tables import ProductImage
from models.errors import InvalidRequest, NotFound
from models.users.permissions import Actor, authorize

# Pillow format → (content type, file extension)
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp"),
           "GIF": ("image/gif", "gif")}
CONTENT_TYPES = {content_type for content_type, _ in FORMATS.values()}


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


def add_image(session: Session, actor: Actor, storage: Storage, product_id: uuid.UUID, data: bytes,
              declared: str, alt_text: str, max_bytes: int, max_pixels: int) -> ProductImage:
    """Check and store an uploaded image, last in the product's order."""
    authorize(actor, "products:update")
    get_product(session, product_id)
    content_type, extension = check_image(data, declared, max_bytes, max_pixels)
    image_id = uuid.uuid4()
    key = f"products/{product_id}/{image_id}.{extension}"
    position = session.scalar(select(func.coalesce(func.max(ProductImage.position) + 1, 0))
                              .where(ProductImage.product_id == product_id))
    storage.put(key, data, content_type)
    image = ProductImage(id=image_id, product_id=product_id, storage_key=key, content_type=content_type,
                         alt_text=alt_text, position=position)
    session.add(image)
    session.flush()
    queue_indexing(session, [product_id])
    return image


def get_image(session: Session, product_id: uuid.UUID, image_id: uuid.UUID) -> ProductImage:
    image = session.get(ProductImage, image_id)
    if image is None or image.product_id != product_id:
        raise NotFound("image not found")
    return image


def delete_image(session: Session, actor: Actor, product_id: uuid.UUID, image_id: uuid.UUID) -> str:
    """Remove the image's row; returns its storage key for the caller to delete after commit."""
    authorize(actor, "products:update")
    image = get_image(session, product_id, image_id)
    session.delete(image)
    session.flush()
    queue_indexing(session, [product_id])
    return image.storage_key
