"""The OpenID Connect provider: clients, signing keys, the pairwise-subject key, authorization
requests; and the Verify channel that proved a number (for the ID token's `amr`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oidc_clients")),
    )
    op.create_table(
        "oidc_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_oidc_keys")),
    )
    op.create_index(op.f("ix_oidc_keys_created_at"), "oidc_keys", ["created_at"])
    op.create_table(
        "oidc_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_oidc_secrets")),
    )
    op.create_table(
        "oidc_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("prompt", sa.String(length=64), nullable=True),
        sa.Column("max_age", sa.Integer(), nullable=True),
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("match_number", sa.Integer(), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("full_name", sa.String(length=256), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("auth_time", UTCDateTime(), nullable=True),
        sa.Column("refusal", sa.String(length=32), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", UTCDateTime(), nullable=True),
        sa.Column("code_used_at", UTCDateTime(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_requests")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oidc_requests_code_hash")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_oidc_requests_link_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oidc_requests_token_hash")),
    )
    op.create_index(op.f("ix_oidc_requests_chat_id"), "oidc_requests", ["chat_id"])
    op.create_index(op.f("ix_oidc_requests_created_at"), "oidc_requests", ["created_at"])
    op.create_index(
        "ix_oidc_requests_client_id_created_at", "oidc_requests", ["client_id", "created_at"]
    )
    op.create_index(
        "ix_oidc_requests_ip_hash_created_at", "oidc_requests", ["ip_hash", "created_at"]
    )
    op.add_column("login_flows", sa.Column("channel", sa.String(length=8), nullable=True))
    op.add_column(
        "login_flows",
        sa.Column("reprove", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("verified_users", sa.Column("channel", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verified_users") as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("login_flows") as batch_op:
        batch_op.drop_column("reprove")
        batch_op.drop_column("channel")
    op.drop_table("oidc_requests")
    op.drop_table("oidc_secrets")
    op.drop_index(op.f("ix_oidc_keys_created_at"), table_name="oidc_keys")
    op.drop_table("oidc_keys")
    op.drop_table("oidc_clients")
