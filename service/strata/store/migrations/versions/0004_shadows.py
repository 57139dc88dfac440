"""Shadows: a ruleset's candidate version, share and seed; "shadow" in the audit log.

Revision ID: 0004
Revises: 0003
Created: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_BEFORE = "action IN ('publish', 'activate', 'rollback', 'alias', 'split')"
_AFTER = "action IN ('publish', 'activate', 'rollback', 'alias', 'split', 'shadow')"


def _audit_actions(check: str) -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("ck_audit_log_action"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_log_action"), check)


def upgrade() -> None:
    op.create_table(
        "ruleset_shadows",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("share", sa.Double(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ruleset_shadows"),
        sa.ForeignKeyConstraint(
            ["name"], ["ruleset_heads.name"], name="fk_ruleset_shadows_name_ruleset_heads"
        ),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["ruleset_versions.name", "ruleset_versions.version"],
            name="fk_ruleset_shadows_version_ruleset_versions",
        ),
    )
    _audit_actions(_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM audit_log WHERE action = 'shadow'")
    _audit_actions(_BEFORE)
    op.drop_table("ruleset_shadows")
