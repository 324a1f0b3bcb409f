"""Search indexing coalesced across products: one task per window of time, marks claimed by the task.

A change marks its products in `search_pending` and, in the same
transaction, opens the current window in `search_windows` unless it is open
already; only the transaction that opened it queues the window's task. The
task claims every unclaimed mark (`claimed_by`, its own id), indexes those
products and deletes the marks still claimed by it; a change made meanwhile
clears the claim, so its mark stays for the next window.

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("search_pending", sa.Column("claimed_by", sa.String(64)))
    op.add_column("search_pending", sa.Column("claimed_at", sa.DateTime()))
    op.create_table(
        "search_windows",
        sa.Column("starts_at", sa.DateTime(timezone=True), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("search_windows")
    op.drop_column("search_pending", "claimed_at")
    op.drop_column("search_pending", "claimed_by")
