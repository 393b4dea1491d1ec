"""The queries of the OpenID Connect provider (clients, keys, authorization requests). Like
`bot.db.repo`: the session first, keyword-only arguments, the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from bot.db.locks import OIDC_NAMESPACE
from bot.db.models import AuthEvent, OidcClient, OidcKey, OidcRequest, OidcSecret

# ---- clients ------------------------------------------------------------------------------


async def add_client(session: AsyncSession, *, client: OidcClient) -> None:
    """Register a client."""
    session.add(client)


async def get_client(session: AsyncSession, *, client_id: str) -> OidcClient | None:
    """A registered client, if the id is known."""
    return await session.get(OidcClient, client_id, populate_existing=True)


async def list_clients(session: AsyncSession) -> Sequence[OidcClient]:
    """Every client, oldest first."""
    result = await session.execute(
        select(OidcClient).order_by(OidcClient.created_at, OidcClient.client_id)
    )
    return result.scalars().all()


async def delete_client(session: AsyncSession, *, client_id: str) -> bool:
    """Remove a client; False if it was not there."""
    result = await session.execute(delete(OidcClient).where(OidcClient.client_id == client_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---- keys and secrets ---------------------------------------------------------------------


async def lock(session: AsyncSession, *, name: str) -> None:
    """Serialise, across processes and for the rest of the transaction, the work named
    `name` (creating the first key; counting one client's requests). SQLite needs nothing:
    every writing transaction there already holds the database's write lock."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))").bindparams(
                bindparam("name")
            ),
            {"namespace": OIDC_NAMESPACE, "name": name},
        )


async def keys(session: AsyncSession) -> Sequence[OidcKey]:
    """The signing keys, newest first."""
    result = await session.execute(
        select(OidcKey).order_by(OidcKey.created_at.desc(), OidcKey.kid.desc())
    )
    return result.scalars().all()


async def add_key(session: AsyncSession, *, kid: str, private_pem: str, at: datetime) -> None:
    """Store a new signing key (it signs from now on: it is the newest)."""
    session.add(OidcKey(kid=kid, private_pem=private_pem, created_at=at))


async def delete_key(session: AsyncSession, *, kid: str) -> None:
    """Remove a signing key (it is no longer published)."""
    await session.execute(delete(OidcKey).where(OidcKey.kid == kid))


async def get_secret(session: AsyncSession, *, name: str) -> str | None:
    """A stored provider secret, if it was made already."""
    secret = await session.get(OidcSecret, name)
    return secret.value if secret is not None else None


async def add_secret(session: AsyncSession, *, name: str, value: str, at: datetime) -> None:
    """Store a provider secret (once; see `lock`)."""
    session.add(OidcSecret(name=name, value=value, created_at=at))


# ---- authorization requests -----------------------------------------------------------------


async def add_request(session: AsyncSession, *, request: OidcRequest) -> None:
    """Store a new authorization request."""
    session.add(request)


async def get_request(
    session: AsyncSession, *, request_id: str, lock: bool = False
) -> OidcRequest | None:
    """A request by its id; with `lock`, its row is locked for the transaction (PostgreSQL)."""
    return await session.get(OidcRequest, request_id, populate_existing=True, with_for_update=lock)


async def _one(
    session: AsyncSession, query: Select[tuple[OidcRequest]], *, lock: bool
) -> OidcRequest | None:
    statement = query.with_for_update() if lock else query
    result = await session.execute(statement.execution_options(populate_existing=True))
    return result.scalars().first()


async def request_by_link(
    session: AsyncSession, *, link_hash: str, lock: bool = False
) -> OidcRequest | None:
    """The request a deep-link token belongs to (by the token's hash)."""
    query = select(OidcRequest).where(OidcRequest.link_hash == link_hash)
    return await _one(session, query, lock=lock)


async def request_by_code(
    session: AsyncSession, *, code_hash: str, lock: bool = False
) -> OidcRequest | None:
    """The request an authorization code was issued for (by the code's hash)."""
    query = select(OidcRequest).where(OidcRequest.code_hash == code_hash)
    return await _one(session, query, lock=lock)


async def request_by_token(session: AsyncSession, *, token_hash: str) -> OidcRequest | None:
    """The request an access token was issued for (by the token's hash)."""
    query = select(OidcRequest).where(OidcRequest.token_hash == token_hash)
    return await _one(session, query, lock=False)


async def waiting_for_login(
    session: AsyncSession, *, chat_id: int, lock: bool = False
) -> OidcRequest | None:
    """The newest request whose chat was sent through a login before confirming it."""
    query = (
        select(OidcRequest)
        .where(OidcRequest.chat_id == chat_id, OidcRequest.status == "login")
        .order_by(OidcRequest.created_at.desc())
        .limit(1)
    )
    return await _one(session, query, lock=lock)


async def claim_code(session: AsyncSession, *, request_id: str, now: datetime) -> bool:
    """Mark a request's code used; False if it already was (another exchange won)."""
    result = await session.execute(
        update(OidcRequest)
        .where(OidcRequest.id == request_id, OidcRequest.code_used_at.is_(None))
        .values(code_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_requests(
    session: AsyncSession,
    *,
    since: datetime,
    client_id: str | None = None,
    ip_hash: str | None = None,
) -> int:
    """Requests opened since a time, by one client or from one address."""
    query = select(func.count()).where(OidcRequest.created_at > since)
    if client_id is not None:
        query = query.where(OidcRequest.client_id == client_id)
    if ip_hash is not None:
        query = query.where(OidcRequest.ip_hash == ip_hash)
    return int(await session.scalar(query) or 0)


async def refusal_recorded(
    session: AsyncSession,
    *,
    event: str,
    detail: str,
    chat_id: int,
    request_id: str | None,
    ip_hash: str | None,
    since: datetime,
) -> bool:
    """Whether the same event (detail, chat, request, address) was recorded after a time."""

    def same(column: InstrumentedAttribute[Any], value: object) -> ColumnElement[bool]:
        return column.is_(None) if value is None else column == value

    query = (
        select(AuthEvent.id)
        .where(
            same(AuthEvent.ip_hash, ip_hash),
            AuthEvent.at > since,
            AuthEvent.event == event,
            AuthEvent.chat_id == chat_id,
            AuthEvent.detail == detail,
            same(AuthEvent.request_id, request_id),
        )
        .limit(1)
    )
    return await session.scalar(query) is not None


async def purge_requests(session: AsyncSession, *, before: datetime) -> int:
    """Drop requests created before a time (their codes and tokens expired long ago)."""
    result = await session.execute(delete(OidcRequest).where(OidcRequest.created_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_chat_requests(session: AsyncSession, *, chat_id: int) -> None:
    """Drop the requests a chat answered (/forget)."""
    await session.execute(delete(OidcRequest).where(OidcRequest.chat_id == chat_id))
