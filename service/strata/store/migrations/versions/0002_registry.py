"""The rule registry: immutable versions, heads with revisions, aliases, the audit log, API tokens.

Revision ID: 0002
Revises: 0001
Created: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_VERSION_FK = (["name", "version"], ["ruleset_versions.name", "ruleset_versions.version"])


def upgrade() -> None:
    instant = sa.DateTime(timezone=True)
    op.create_table(
        "ruleset_versions",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created_at", instant, server_default=sa.func.now(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_ruleset_versions"),
        sa.UniqueConstraint("name", "checksum", name="uq_ruleset_versions_name_checksum"),
    )
    op.create_table(
        "ruleset_heads",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ruleset_heads"),
        sa.ForeignKeyConstraint(
            ["name", "active_version"],
            _VERSION_FK[1],
            name="fk_ruleset_heads_active_version_ruleset_versions",
        ),
    )
    op.create_table(
        "aliases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_aliases"),
        sa.ForeignKeyConstraint(*_VERSION_FK, name="fk_aliases_version_ruleset_versions"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _BIG_SERIAL, autoincrement=True, nullable=False),
        sa.Column("at", instant, server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("ruleset", sa.Text(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.CheckConstraint(
            "action IN ('publish', 'activate', 'rollback', 'alias')", name="ck_audit_log_action"
        ),
    )
    op.create_index("ix_audit_log_ruleset_id", "audit_log", ["ruleset", "id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", _BIG_SERIAL, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", instant, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.CheckConstraint("role IN ('publisher', 'reader')", name="ck_api_tokens_role"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_audit_log_ruleset_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("aliases")
    op.drop_table("ruleset_heads")
    op.drop_table("ruleset_versions")
