"""Traffic splits: a ruleset's weighted versions, seed and coverage; "split" in the audit log.

Revision ID: 0003
Revises: 0002
Created: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_BEFORE = "action IN ('publish', 'activate', 'rollback', 'alias')"
_AFTER = "action IN ('publish', 'activate', 'rollback', 'alias', 'split')"


# 0002 named its check "ck_audit_log_action" under the naming convention, which
# made it "ck_audit_log_ck_audit_log_action"; this revision gives it its plain name.
_OLD_NAME, _NAME = "ck_audit_log_ck_audit_log_action", "ck_audit_log_action"


def _audit_actions(drop: str, create: str, check: str) -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f(drop), type_="check")
        batch.create_check_constraint(op.f(create), check)


def upgrade() -> None:
    op.create_table(
        "ruleset_splits",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("arms", sa.Text(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.Column("coverage", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ruleset_splits"),
        sa.ForeignKeyConstraint(
            ["name"], ["ruleset_heads.name"], name="fk_ruleset_splits_name_ruleset_heads"
        ),
    )
    _audit_actions(_OLD_NAME, _NAME, _AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM audit_log WHERE action = 'split'")
    _audit_actions(_NAME, _OLD_NAME, _BEFORE)
    op.drop_table("ruleset_splits")
