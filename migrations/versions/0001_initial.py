"""Logins, flows in progress, verification starts for the limits, admin alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verified_users",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("full_name", sa.String(length=256), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_verified_users")),
        sa.UniqueConstraint("phone_number", name=op.f("uq_verified_users_phone_number")),
    )
    op.create_index(
        op.f("ix_verified_users_verified_at"), "verified_users", ["verified_at"], unique=False
    )
    op.create_table(
        "login_flows",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("tries_left", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("code_sent_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_login_flows")),
    )
    op.create_index(op.f("ix_login_flows_request_id"), "login_flows", ["request_id"])
    op.create_index(op.f("ix_login_flows_expires_at"), "login_flows", ["expires_at"])
    op.create_table(
        "verification_starts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("number_hash", sa.String(length=64), nullable=False),
        sa.Column("country_code", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_starts")),
    )
    op.create_index(
        "ix_verification_starts_chat_id_created_at",
        "verification_starts",
        ["chat_id", "created_at"],
    )
    op.create_index(
        "ix_verification_starts_number_hash_created_at",
        "verification_starts",
        ["number_hash", "created_at"],
    )
    op.create_index(
        op.f("ix_verification_starts_created_at"), "verification_starts", ["created_at"]
    )
    op.create_table(
        "admin_alerts",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_admin_alerts")),
    )


def downgrade() -> None:
    op.drop_table("admin_alerts")
    op.drop_index(op.f("ix_verification_starts_created_at"), table_name="verification_starts")
    op.drop_index("ix_verification_starts_number_hash_created_at", "verification_starts")
    op.drop_index("ix_verification_starts_chat_id_created_at", "verification_starts")
    op.drop_table("verification_starts")
    op.drop_index(op.f("ix_login_flows_expires_at"), table_name="login_flows")
    op.drop_index(op.f("ix_login_flows_request_id"), table_name="login_flows")
    op.drop_table("login_flows")
    op.drop_index(op.f("ix_verified_users_verified_at"), table_name="verified_users")
    op.drop_table("verified_users")
