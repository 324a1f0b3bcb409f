"""Emails: the attempt mark committed before the provider is called, so a cut-off attempt is not resent blindly.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("email_messages", sa.Column("attempted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE email_messages SET status = 'queued' WHERE status = 'sending'")
    op.drop_column("email_messages", "attempted_at")
