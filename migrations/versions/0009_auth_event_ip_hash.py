"""The address of a web login's audit event (`auth_events.ip_hash`, the keyed hash the web
login also stores in `oidc_requests.ip_hash`), so that refusals from one address are recorded
once a window instead of once a request. Rows written before stay without one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_events", sa.Column("ip_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_auth_events_ip_hash_at", "auth_events", ["ip_hash", "at"])


def downgrade() -> None:
    op.drop_index("ix_auth_events_ip_hash_at", table_name="auth_events")
    with op.batch_alter_table("auth_events") as batch:
        batch.drop_column("ip_hash")
