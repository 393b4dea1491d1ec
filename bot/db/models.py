"""The tables, as typed SQLAlchemy models. Alembic's migrations are the source of the schema;
the migration test keeps these models and the migrations in agreement."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

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
    # How the number was proven (`bot.login.steps.Method`: sms, voice, telegram_gateway,
    # telegram_contact); None for logins from before it was recorded.
    channel: Mapped[str | None] = mapped_column(String(16))


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
    # The channel the code was last sent by ("Call me instead" moves it on).
    channel: Mapped[str | None] = mapped_column(String(8))
    # The number must be proven again even if the chat is logged in with it (a website
    # asked for a fresh login: prompt=login, max_age).
    reprove: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The language the chat spoke when the login began (a `bot.i18n` code): what the sweeper
    # tells it, and the code it sends by itself, speak it. None in rows from before 0010.
    language: Mapped[str | None] = mapped_column(String(16))


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
        Index("ix_auth_events_ip_hash_at", "ip_hash", "at"),
        # On SQLite, migration 0011 adds ix_auth_events_day_counts, an index on the
        # statistics' expression (`repo.event_counts_query`) that only a migration can hold.
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
    # The web login's events: the keyed hash of the address (as `oidc_requests.ip_hash`), so
    # that a flood of refusals from one address is recorded once a window.
    ip_hash: Mapped[str | None] = mapped_column(String(64))


class ChatNotice(Base):
    """Something a chat must be told on its next message (its login was moved or revoked)."""

    __tablename__ = "chat_notices"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    phone_number: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatLanguage(Base):
    """The language a chat chose with /language (a `bot.i18n.LANGUAGES` code); a chat
    without a row speaks its sender's Telegram language. Erased by /forget."""

    __tablename__ = "chat_languages"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    language: Mapped[str] = mapped_column(String(16))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime())


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


class OidcClient(Base):
    """A website (or app) registered to log its users in through the bot (OpenID Connect).
    A confidential client's secret is kept only as a hash; a public one has none."""

    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # The registered redirect URIs, one per line (matched exactly).
    redirect_uris: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OidcKey(Base):
    """A key the provider signs ID tokens with; the newest signs, all are published."""

    __tablename__ = "oidc_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class OidcSecret(Base):
    """A secret the provider generates once and every process shares (the key of the
    pairwise subject identifiers)."""

    __tablename__ = "oidc_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OidcRequest(Base):
    """One authorization request, from the page a browser opened to the tokens the website
    got: the OIDC parameters, the deep link and the number shown (the link only as a hash),
    the chat that answered, the claims it approved, the code and the access token (hashes)."""

    __tablename__ = "oidc_requests"
    __table_args__ = (
        Index("ix_oidc_requests_client_id_created_at", "client_id", "created_at"),
        Index("ix_oidc_requests_ip_hash_created_at", "ip_hash", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(256))
    state: Mapped[str | None] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    prompt: Mapped[str | None] = mapped_column(String(64))
    max_age: Mapped[int | None] = mapped_column(Integer)
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    match_number: Mapped[int] = mapped_column(Integer)
    ip_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    phone_number: Mapped[str | None] = mapped_column(String(16))
    full_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refusal: Mapped[str | None] = mapped_column(String(32))
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
