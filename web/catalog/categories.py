"""/categories: the category tree (products permissions apply)."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from models.catalog import categories
from models.catalog.listing import decode_cursor, encode_cursor
from web.auth.guard import current_actor, requires
from web.catalog import services
from web.catalog.http import OUTAGE, unavailable
from web.catalog.schemas import CategoryPageSchema, CategorySchema, CategoryUpdateSchema, PageQuerySchema
from web.extensions import db

blp = Blueprint("categories", __name__, url_prefix="/api/v1/categories", description="The category tree")
for _outage in OUTAGE:
    blp.register_error_handler(_outage, unavailable)

PATH_ORDER = "path"


@blp.route("")
class Categories(MethodView):
    @requires("products:view")
    @blp.arguments(PageQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, CategoryPageSchema)
    def get(self, limit=100, cursor=None):
        """Every category in path order (parents before their children)."""
        after = decode_cursor(cursor, PATH_ORDER) if cursor else None
        with db().session() as session:
            rows = categories.list_categories(session, limit + 1, after)
        next_cursor = encode_cursor(PATH_ORDER, [rows[limit - 1].path, rows[limit - 1].id]) \
            if len(rows) > limit else None
        return {"items": rows[:limit], "next_cursor": next_cursor}

    @requires("products:create")
    @blp.arguments(CategorySchema)
    @blp.response(201, CategorySchema)
    @blp.alt_response(409, description="The name is taken under this parent")
    def post(self, data):
        """Create a category under `parentId` or at the root (admin)."""
        with db().session() as session:
            return categories.create_category(session, current_actor(), data["name"], data["parent_id"])


@blp.route("/<uuid:category_id>")
class CategoryItem(MethodView):
    @requires("products:view")
    @blp.response(200, CategorySchema)
    def get(self, category_id: uuid.UUID):
        """One category with its full path."""
        with db().session() as session:
            return categories.get_category(session, category_id)

    @requires("products:update")
    @blp.arguments(CategoryUpdateSchema)
    @blp.response(200, CategorySchema)
    @blp.alt_response(409, description="The move would make a cycle, or the name is taken")
    def patch(self, data, category_id: uuid.UUID):
        """Rename and/or move a category with its subtree (staff)."""
        with db().session() as session:
            category = categories.update_category(session, current_actor(), category_id, **data)
        services().cache.invalidate_quietly([])
        return category

    @requires("products:delete")
    @blp.response(204)
    @blp.alt_response(409, description="The category has subcategories")
    def delete(self, category_id: uuid.UUID):
        """Delete a category without subcategories; its products become uncategorised (admin)."""
        with db().session() as session:
            categories.delete_category(session, current_actor(), category_id)
        services().cache.invalidate_quietly([])
