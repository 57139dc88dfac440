"""The profiles table: the JSON document plus the fields population SQL reads.

Revision ID: 0001
Revises:
Created: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_INDEXED = ("registered_at", "last_active_at", "last_order_at", "updated_at")


def upgrade() -> None:
    instant = sa.DateTime(timezone=True)
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("registered_at", instant, nullable=True),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("first_active_date", sa.Date(), nullable=True),
        sa.Column("last_active_at", instant, nullable=True),
        sa.Column("last_order_at", instant, nullable=True),
        sa.Column("orders_365d", sa.BigInteger(), nullable=False),
        sa.Column("spend_365d", sa.Double(), nullable=False),
        sa.Column("followers_count", sa.BigInteger(), nullable=False),
        sa.Column("posts_30d", sa.BigInteger(), nullable=False),
        sa.Column("likes_received_30d", sa.BigInteger(), nullable=False),
        sa.Column("comments_30d", sa.BigInteger(), nullable=False),
        sa.Column("shares_30d", sa.BigInteger(), nullable=False),
        sa.Column("likes_given_30d", sa.BigInteger(), nullable=False),
        sa.Column("is_signed_kol", sa.Boolean(), nullable=False),
        sa.Column("profile_fields_completed", sa.BigInteger(), nullable=False),
        sa.Column("following_count", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.BigInteger(), nullable=False),
        sa.Column("streak_days", sa.BigInteger(), nullable=False),
        sa.Column("last_checkin_date", sa.Date(), nullable=True),
        sa.Column("membership", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_at", instant, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_profiles"),
    )
    for column in _INDEXED:
        op.create_index(f"ix_profiles_{column}", "profiles", [column])


def downgrade() -> None:
    for column in _INDEXED:
        op.drop_index(f"ix_profiles_{column}", table_name="profiles")
    op.drop_table("profiles")
