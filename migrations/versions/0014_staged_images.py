"""Catalog: uploaded images staged in the database until a worker has stored them in object storage.

Revision ID: 0014
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_images",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("alt_text", sa.String(length=255), server_default="", nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("staged_images_product_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("staged_images_pkey")),
    )
    op.create_index(op.f("ix_staged_images_product_id"), "staged_images", ["product_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staged_images_product_id"), table_name="staged_images")
    op.drop_table("staged_images")
