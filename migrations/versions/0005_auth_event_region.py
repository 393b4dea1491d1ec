"""The region of an audit event's number (ISO 3166 alpha-2 as phonenumbers reports it), so
statistics can tell +1 876 (JM) from +1 201 (US). Rows written before stay without one: the
masked number they keep cannot tell the regions of a calling code apart.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_events", sa.Column("region", sa.String(length=3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_events") as batch:
        batch.drop_column("region")
