"""/products/{id}/images (uploads, stored in object storage by a worker) and /media, which serves the local store."""

from __future__ import annotations

import mimetypes
import uuid

from flask import Response, abort, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from integrations.errors import PermanentError
from integrations.storage import ObjectMissing, check_key
from models.catalog import images
from models.catalog.actions import get_product
from web.auth.guard import current_actor, requires
from web.catalog import services
from web.catalog.http import OUTAGE, unavailable
from web.catalog.schemas import ImageListSchema, ImageSchema, StagedImageSchema
from web.extensions import db, runtime
from web.schemas import CamelSchema

blp = Blueprint("product_images", __name__, url_prefix="/api/v1/products", description="Product images")
media = Blueprint("media", __name__, url_prefix="/media", description="Files of the local object store")
for _outage in OUTAGE:
    blp.register_error_handler(_outage, unavailable)


class UploadSchema(CamelSchema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


def _with_url(image):
    image.url = services().storage.url(image.storage_key)
    return image


@blp.route("/<uuid:product_id>/images")
class Images(MethodView):
    @requires("products:view")
    @blp.response(200, ImageListSchema)
    def get(self, product_id: uuid.UUID):
        """The product's images, in display order (all of them: one page)."""
        with db().session() as session:
            return {"items": [_with_url(image) for image in get_product(session, product_id).images]}

    @requires("products:update")
    @blp.arguments(UploadSchema, location="files")
    @blp.response(202, StagedImageSchema)
    @blp.alt_response(400, description="Not an accepted image, or too large")
    def post(self, data, product_id: uuid.UUID):
        """Upload an image: multipart field `file` (JPEG, PNG, WebP or GIF), optional form field `altText` (staff).

        The bytes are checked here and kept until a worker has stored them; the image is then listed with
        the product's images under the `id` answered here (usually within a second).
        """
        upload = request.files["file"]
        settings = runtime().settings
        image = images.checked(upload.stream.read(settings.IMAGE_MAX_BYTES + 1), (upload.mimetype or "").lower(),
                               images.upload_limits(settings))
        with db().session() as session:
            staged = images.stage_upload(session, current_actor(), product_id, image,
                                         request.form.get("altText", "")[:255])
        return {"id": staged.id, "status": "processing", "content_type": staged.content_type,
                "alt_text": staged.alt_text}


@blp.route("/<uuid:product_id>/images/<uuid:image_id>")
class ImageItem(MethodView):
    @requires("products:view")
    @blp.response(200, ImageSchema)
    def get(self, product_id: uuid.UUID, image_id: uuid.UUID):
        """One image and its URL."""
        with db().session() as session:
            return _with_url(images.get_image(session, product_id, image_id))

    @requires("products:update")
    @blp.response(204)
    def delete(self, product_id: uuid.UUID, image_id: uuid.UUID):
        """Remove an image from the product (staff); a worker then deletes its file from storage."""
        with db().session() as session:
            images.delete_image(session, current_actor(), product_id, image_id)
        services().cache.invalidate_quietly([str(product_id)])


@media.route("/<path:key>")
def serve(key: str):
    """A file of the local store; keys are immutable (a new upload gets a new key), so cache for a year."""
    if runtime().settings.STORAGE_BACKEND != "local":
        abort(404)
    try:
        data = services().storage.read(check_key(key))
    except (ObjectMissing, PermanentError, OSError):
        abort(404)
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    response = Response(data, mimetype=content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
