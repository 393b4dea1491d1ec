"""How a login proved its number: `verified_users.channel` (and its copy,
`oidc_requests.channel`) widened from the Verify channels (`sms`, `voice`) to every method
(`telegram_gateway`, `telegram_contact`). Existing values stay as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("verified_users", "oidc_requests")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "channel",
                existing_type=sa.String(length=8),
                type_=sa.String(length=16),
                existing_nullable=True,
            )


def downgrade() -> None:
    # Methods that do not fit the old width are cut to it rather than failing the downgrade.
    for table in _TABLES:
        op.execute(
            sa.text(f"UPDATE {table} SET channel = substr(channel, 1, 8) WHERE length(channel) > 8")  # noqa: S608
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "channel",
                existing_type=sa.String(length=16),
                type_=sa.String(length=8),
                existing_nullable=True,
            )
