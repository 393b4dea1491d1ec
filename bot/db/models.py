"""The tables, as typed SQLAlchemy models. Alembic's migrations are the source of the schema;
the migration test keeps these models and the migrations in agreement."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names are stable."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class VerifiedUser(Base):
    """A chat that is logged in: the number it proved, and when. One number, one chat."""

    __tablename__ = "verified_users"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger)
    phone_number: Mapped[str] = mapped_column(String(16), unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    full_name: Mapped[str | None] = mapped_column(String(256))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginFlow(Base):
    """A login in progress: the conversation's step and what it has gathered so far.

    This row is the one source of truth for the conversation; it is written in the same
    transaction as the step that changes it, so a restart loses nothing.
    """

    __tablename__ = "login_flows"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[str] = mapped_column(String(16))
    phone_number: Mapped[str | None] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    tries_left: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    code_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class VerificationStart(Base):
    """One paid verification start, counted by the limits. The number is kept only as a hash.
    Counted before its Verify call, it learns its request once Vonage's answer is recorded:
    until then (or for good, if the answer was lost) Vonage may be running a request for it
    that the bot does not know."""

    __tablename__ = "verification_starts"
    __table_args__ = (
        Index("ix_verification_starts_chat_id_created_at", "chat_id", "created_at"),
        Index("ix_verification_starts_number_hash_created_at", "number_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    number_hash: Mapped[str] = mapped_column(String(64))
    country_code: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))


class AdminAlert(Base):
    """When admins were last told about a kind of trouble, so they are told once, not per user."""

    __tablename__ = "admin_alerts"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthEvent(Base):
    """The audit trail: one append-only row per thing that happened to a login. Numbers appear
    only masked and hashed; codes never."""

    __tablename__ = "auth_events"
    __table_args__ = (
        Index("ix_auth_events_chat_id_at", "chat_id", "at"),
        Index("ix_auth_events_number_hash_at", "number_hash", "at"),
        Index("ix_auth_events_event_at", "event", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    event: Mapped[str] = mapped_column(String(24))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    number_masked: Mapped[str | None] = mapped_column(String(24))
    number_hash: Mapped[str | None] = mapped_column(String(64))
    country_code: Mapped[int | None] = mapped_column(Integer)
    # ISO 3166 alpha-2 (or "001", non-geographic); None in rows written before migration 0005.
    region: Mapped[str | None] = mapped_column(String(3))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(64))


class ChatNotice(Base):
    """Something a chat must be told on its next message (its login was moved or revoked)."""

    __tablename__ = "chat_notices"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    phone_number: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProcessedUpdate(Base):
    """Telegram updates already handled (PostgreSQL deployments with several processes):
    an update delivered twice, or to two processes, is acted on once."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ChatClaim(Base):
    """Which process is handling a chat's update right now (PostgreSQL deployments with
    several processes), so one chat's updates never run at two processes at once. A claim
    lapses at `until` unless its process renews it; a process never renews one held longer
    than a stuck update may take (see `bot.db.locks`)."""

    __tablename__ = "chat_claims"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(32))
    update_id: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
