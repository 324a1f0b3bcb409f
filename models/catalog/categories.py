"""Category tree actions: create, rename, move a subtree (never into itself), delete a leaf.

`path` is every name from the root joined by " > "; a rename or a move
rewrites the paths of the whole subtree in one statement and queues the
subtree's products for indexing (their search documents carry the path).
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.catalog.indexing import queue_indexing
from models.catalog.tables import Category, Product
from models.errors import Conflict, InvalidRequest, NotFound
from models.users.permissions import Actor, authorize

SEPARATOR = " > "

# The ids of a category and all its descendants as `tree` (a statement's WITH clause); SUBTREE selects them.
TREE = """
    WITH RECURSIVE tree AS (
        SELECT id FROM categories WHERE id = :root
        UNION ALL
        SELECT c.id FROM categories c JOIN tree t ON c.parent_id = t.id
    )"""
SUBTREE = text(TREE + """
    SELECT id FROM tree
""")

# Rewrites the subtree's paths from its root's new path, parents before children.
REPATH = text("""
    WITH RECURSIVE tree AS (
        SELECT id, CAST(:path AS text) AS path FROM categories WHERE id = :root
        UNION ALL
        SELECT c.id, t.path || :sep || c.name FROM categories c JOIN tree t ON c.parent_id = t.id
    )
    UPDATE categories SET path = tree.path, updated_at = now() FROM tree WHERE categories.id = tree.id
""")


def subtree_ids(session: Session, category_id: uuid.UUID) -> list[uuid.UUID]:
    """The category and all its descendants."""
    return list(session.scalars(SUBTREE, {"root": category_id}))


def get_category(session: Session, category_id: uuid.UUID) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound("category not found")
    return category


def list_categories(session: Session, limit: int, after: tuple[str, str] | None) -> list[Category]:
    """Categories in path order, `limit` of them after the (path, id) cursor."""
    query = select(Category).order_by(Category.path, Category.id).limit(limit)
    if after is not None:
        query = query.where(text("(categories.path, categories.id) > (:p, CAST(:i AS uuid))")
                            .bindparams(p=after[0], i=after[1]))
    return list(session.scalars(query))


def _parent(session: Session, parent_id: uuid.UUID | None) -> Category | None:
    if parent_id is None:
        return None
    parent = session.get(Category, parent_id)
    if parent is None:
        raise InvalidRequest("parent category not found", {"parentId": ["no category with this id"]})
    return parent


def _path(parent: Category | None, name: str) -> str:
    return name if parent is None else parent.path + SEPARATOR + name


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        if "categories_parent_id_name_key" in str(exc.orig):
            raise Conflict("a category with this name exists under this parent",
                           {"name": ["already used under this parent"]}) from None
        raise


def create_category(session: Session, actor: Actor, name: str, parent_id: uuid.UUID | None = None) -> Category:
    """Add a category under `parent_id` (or at the root)."""
    authorize(actor, "products:create")
    parent = _parent(session, parent_id)
    category = Category(name=name, parent_id=parent_id, path=_path(parent, name))
    session.add(category)
    _flush(session)
    return category


def update_category(session: Session, actor: Actor, category_id: uuid.UUID, **changes) -> Category:
    """Rename and/or move a category with its whole subtree; refuses to make a cycle."""
    authorize(actor, "products:update")
    category = session.get(Category, category_id, with_for_update=True)
    if category is None:
        raise NotFound("category not found")
    if "parent_id" in changes:
        new_parent = changes["parent_id"]
        if new_parent is not None and new_parent in subtree_ids(session, category_id):
            raise Conflict("a category cannot move under itself or its descendants",
                           {"parentId": ["would make a cycle"]})
        _parent(session, new_parent)  # before the change: a flush must never meet a missing parent
        category.parent_id = new_parent
    if "name" in changes:
        category.name = changes["name"]
    parent = _parent(session, category.parent_id)
    _flush(session)
    session.execute(REPATH, {"root": category.id, "path": _path(parent, category.name), "sep": SEPARATOR})
    session.refresh(category)
    _queue_products(session, subtree_ids(session, category.id))
    return category


def delete_category(session: Session, actor: Actor, category_id: uuid.UUID) -> None:
    """Delete a category without children; its products keep existing, uncategorised."""
    authorize(actor, "products:delete")
    category = get_category(session, category_id)
    if session.scalar(select(exists().where(Category.parent_id == category_id))):
        raise Conflict("the category has subcategories; move or delete them first",
                       {"id": ["has subcategories"]})
    _queue_products(session, [category_id])
    session.delete(category)
    session.flush()


def _queue_products(session: Session, category_ids: list[uuid.UUID]) -> None:
    product_ids = session.scalars(select(Product.id).where(Product.category_id.in_(category_ids))).all()
    queue_indexing(session, product_ids)
