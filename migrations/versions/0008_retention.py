"""Retention: each user's last activity and erasure (beside the spec's users table), per-kind purge counters, and
the indexes the purges scan.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The best evidence of activity the data holds today: the account itself, its newest sign-in, its newest order.
BACKFILL = """
INSERT INTO user_lifecycle (user_id, last_active_at)
SELECT u.id, greatest(u.created_at, u.updated_at,
                      (SELECT max(s.created_at) FROM auth_sessions s WHERE s.user_id = u.id),
                      (SELECT max(o.created_at) FROM orders o WHERE o.user_id = u.id))
FROM users u
"""


def upgrade() -> None:
    op.create_table(
        "user_lifecycle",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_active_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("user_lifecycle_user_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("user_lifecycle_pkey")),
    )
    op.create_index("ix_user_lifecycle_last_active_at", "user_lifecycle", ["last_active_at"], unique=False)
    op.execute(BACKFILL)
    op.create_index("ix_orders_created_at", "orders", ["created_at"], unique=False)
    op.create_index("ix_email_messages_created_at", "email_messages", ["created_at"], unique=False)
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"], unique=False)
    op.create_table(
        "retention_counters",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("purged_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_purged", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("retention_counters_pkey")),
    )


def downgrade() -> None:
    op.drop_table("retention_counters")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("ix_email_messages_created_at", table_name="email_messages")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_user_lifecycle_last_active_at", table_name="user_lifecycle")
    op.drop_table("user_lifecycle")
