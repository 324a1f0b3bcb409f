"""`flask search reindex`: rebuild the whole search index from the database, with a progress bar."""

from __future__ import annotations

import click
from sqlalchemy import func, select
from tqdm import tqdm

from models.catalog.documents import all_documents, count_products
from models.catalog.indexing import queue_indexing
from models.catalog.tables import Product
from web.catalog import services
from web.extensions import db


def reindex(show_progress: bool = True) -> int:
    """Rebuild the index; then queue the products changed meanwhile, which the old index may have missed."""
    with db().session() as session:
        started = session.scalar(select(func.now()))
        total = count_products(session)
    with db().sessionmaker() as session, tqdm(total=total, unit="product", disable=not show_progress) as bar:
        count = services().search.reindex(all_documents(session), progress=bar.update)
    with db().session() as session:
        changed = session.scalars(select(Product.id).where(Product.updated_at >= started)).all()
        queue_indexing(session, changed)
    return count


def register(cli) -> None:
    @cli.command("reindex")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def reindex_command(quiet: bool):
        """Build a new index from every product and switch searches to it at once."""
        count = reindex(show_progress=not quiet)
        click.echo(f"indexed {count} products")
