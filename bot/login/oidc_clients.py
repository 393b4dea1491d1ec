"""The websites (OpenID Connect clients) allowed to log their users in through the bot:
registering one, listing and removing them, and checking a client's secret. A confidential
client's secret is shown once and kept only as a hash; a public client (an app that cannot
keep a secret) has none and must use PKCE."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.config import is_loopback
from bot.db import oidc_repo
from bot.db.models import OidcClient

MAX_NAME = 128
MAX_REDIRECT_URI = 2000


CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
CLIENT_ID_LENGTH = 22  # about 131 random bits


def new_client_id() -> str:
    """A fresh client id: random, and only letters and digits, so that it never starts with
    `-` (which a command line would read as an option: `clients remove <id>`) and needs no
    escaping in a URL, a form or a shell."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH))


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just registered: its secret is known only now (None for a public client)."""

    client_id: str
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A registered client, as operators see it."""

    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    created_at: datetime


def secret_hash(secret: str) -> str:
    """How a random secret (client secret, code, token) is stored: enough for values with
    256 bits of entropy, which no one can guess from the hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None: it must be an absolute https URL
    (http only on loopback) without a fragment (RFC 6749 section 3.1.2)."""
    if len(uri) > MAX_REDIRECT_URI:
        return f"is longer than {MAX_REDIRECT_URI} characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https:// URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "must use https:// (plain http only on localhost)"
    if parts.fragment or "#" in uri:
        return "must not have a #fragment"
    if parts.username or parts.password:
        return "must not contain a user name or password"
    return None


def redirect_uris_of(client: OidcClient) -> tuple[str, ...]:
    """The client's registered redirect URIs."""
    return tuple(line for line in client.redirect_uris.split("\n") if line)


def secret_matches(client: OidcClient, secret: str) -> bool:
    """Whether `secret` is the confidential client's secret (in constant time)."""
    if client.secret_hash is None:
        return False
    return hmac.compare_digest(client.secret_hash, secret_hash(secret))


class Clients:
    """Registers, lists and removes clients (the `python -m bot clients` commands)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._now = clock

    async def add(self, *, name: str, redirect_uris: Sequence[str], public: bool) -> NewClient:
        """Register a client; raises ValueError naming what is wrong with the input."""
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"--name must be 1 to {MAX_NAME} characters")
        if not redirect_uris:
            raise ValueError("give at least one --redirect-uri")
        for uri in redirect_uris:
            problem = redirect_uri_problem(uri)
            if problem is not None:
                raise ValueError(f"--redirect-uri {uri!r} {problem}")
        client_id = new_client_id()
        secret = None if public else secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            await oidc_repo.add_client(
                session,
                client=OidcClient(
                    client_id=client_id,
                    name=name,
                    secret_hash=secret_hash(secret) if secret else None,
                    redirect_uris="\n".join(dict.fromkeys(redirect_uris)),
                    created_at=self._now(),
                ),
            )
        return NewClient(client_id, secret)

    async def list(self) -> list[ClientInfo]:
        """Every client, oldest first."""
        async with self._sessions() as session:
            rows = await oidc_repo.list_clients(session)
        return [
            ClientInfo(
                client_id=row.client_id,
                name=row.name,
                public=row.secret_hash is None,
                redirect_uris=redirect_uris_of(row),
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def remove(self, client_id: str) -> bool:
        """Remove a client (its users can no longer log in to it); False if unknown."""
        async with self._sessions.begin() as session:
            return await oidc_repo.delete_client(session, client_id=client_id)
