"""Audit trail (auth_events) and notices for chats whose login ended elsewhere.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("number_masked", sa.String(length=24), nullable=True),
        sa.Column("number_hash", sa.String(length=64), nullable=True),
        sa.Column("country_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_events")),
    )
    op.create_index(op.f("ix_auth_events_at"), "auth_events", ["at"])
    op.create_index("ix_auth_events_chat_id_at", "auth_events", ["chat_id", "at"])
    op.create_index("ix_auth_events_number_hash_at", "auth_events", ["number_hash", "at"])
    op.create_index("ix_auth_events_event_at", "auth_events", ["event", "at"])
    op.create_table(
        "chat_notices",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_chat_notices")),
    )


def downgrade() -> None:
    op.drop_table("chat_notices")
    op.drop_index("ix_auth_events_event_at", table_name="auth_events")
    op.drop_index("ix_auth_events_number_hash_at", table_name="auth_events")
    op.drop_index("ix_auth_events_chat_id_at", table_name="auth_events")
    op.drop_index(op.f("ix_auth_events_at"), table_name="auth_events")
    op.drop_table("auth_events")
