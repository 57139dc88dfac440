"""Profiles keep their sorted active days (``active_days``) for impact previews to read.

Rebuilding them from the JSON document in SQL for every row was a third of a
lifecycle preview's work. Existing rows are filled from their documents, in
batches, by the same function the store writes new rows with
(``strata.engine.facts.every_active_day``), so both databases hold exactly the
days the engine counts. That reads and rewrites every profile once: about six
minutes for a million on Postgres on a busy two-core machine (a ``VACUUM`` after
it gives the space back).

Revision ID: 0005
Revises: 0004
Created: 2026-11-23
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from strata.engine.facts import every_active_day, profile_zone

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 5000
_DAYS = postgresql.ARRAY(sa.Date()).with_variant(sa.Text(), "sqlite")


def _parsed(document: Any) -> dict[str, Any]:
    """The fields ``every_active_day`` reads, typed as the schema parses them."""
    data = json.loads(document) if isinstance(document, str) else document
    first, last = data.get("first_active_date"), data.get("last_active_at")
    return {
        "timezone": data.get("timezone"),
        "activity_dates": [dt.date.fromisoformat(day) for day in data.get("activity_dates") or ()],
        "first_active_date": dt.date.fromisoformat(first) if first else None,
        "last_active_at": dt.datetime.fromisoformat(last) if last else None,
    }


def upgrade() -> None:
    op.add_column("profiles", sa.Column("active_days", _DAYS, nullable=True))
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    profiles = sa.table(
        "profiles", sa.column("user_id", sa.Text()), sa.column("data"), sa.column("active_days")
    )
    update = (
        sa.update(profiles)
        .where(profiles.c.user_id == sa.bindparam("id"))
        .values(active_days=sa.bindparam("days", type_=_DAYS))
    )
    after = ""
    while True:  # keyset pagination: each batch one indexed range read
        rows = connection.execute(
            sa.select(profiles.c.user_id, profiles.c.data)
            .where(profiles.c.user_id > after)
            .order_by(profiles.c.user_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        batch = []
        for user_id, document in rows:
            profile = _parsed(document)
            days = every_active_day(profile, profile_zone(profile))
            batch.append({"id": user_id, "days": days if postgres else orjson.dumps(days).decode()})
        connection.execute(update, batch)
        after = rows[-1][0]
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.alter_column("active_days", existing_type=_DAYS, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.drop_column("active_days")
