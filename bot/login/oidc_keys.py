"""The provider's keys: the RSA keys that sign ID tokens (RS256, published in the JWKS with
their `kid`) and the secret behind the pairwise subject identifiers.

Every key lives in the database, so all processes sign with the same one and publish the same
set: the first start generates one; `python -m bot oidc rotate-key` adds a newer one, which
signs from then on while the older ones stay published (tokens they signed still verify);
`python -m bot oidc retire-key KID` removes an older one once the tokens it signed have
expired. `OIDC_SIGNING_KEY`, when set, signs instead of the stored keys, which stay published.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import Key, KeyParameters, KeySet, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.db import oidc_repo

ALGORITHM = "RS256"
KEY_BITS = 2048
PAIRWISE_SECRET = "pairwise_subject"  # noqa: S105 - the name of a stored secret


def load_key(pem: str) -> RSAKey:
    """An RSA private key from PEM, with its RFC 7638 thumbprint as `kid`. Raises ValueError
    for anything else (the setting's check uses this too)."""
    try:
        key = RSAKey.import_key(pem)
    except Exception as error:  # joserfc raises several types for unreadable keys
        raise ValueError("not an RSA private key in PEM form") from error
    if not key.is_private:
        raise ValueError("is a public key; the provider needs the private key")
    size = key.private_key.key_size if key.private_key is not None else 0
    if size < KEY_BITS:
        raise ValueError(f"is a {size}-bit key; use at least {KEY_BITS} bits")
    return RSAKey.import_key(pem, parameters=_params(key.thumbprint()))


def new_key() -> tuple[str, str]:
    """A fresh signing key: (kid, PEM of the private key)."""
    key = RSAKey.generate_key(KEY_BITS, private=True)
    pem = key.as_pem(private=True).decode()
    return key.thumbprint(), pem


def _params(kid: str) -> KeyParameters:
    return {"kid": kid, "use": "sig", "alg": ALGORITHM}


async def rotate(
    sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = utcnow
) -> str:
    """Add a new signing key (the newest signs); returns its kid."""
    kid, pem = new_key()
    async with sessions.begin() as session:
        await oidc_repo.add_key(session, kid=kid, private_pem=pem, at=clock())
    return kid


class Retired(enum.Enum):
    """What became of `retire-key`."""

    RETIRED = enum.auto()
    UNKNOWN = enum.auto()  # no stored key has that kid
    CURRENT = enum.auto()  # the newest stored key: it signs (unless OIDC_SIGNING_KEY is set)
    STILL_VALID = enum.auto()  # tokens it signed may not have expired yet


@dataclass(frozen=True, slots=True)
class Retirement:
    """The answer to `retire-key`; `after` is when a STILL_VALID key may be retired."""

    result: Retired
    after: datetime | None = None


async def retire(
    sessions: async_sessionmaker[AsyncSession],
    kid: str,
    *,
    token_ttl: timedelta,
    clock: Callable[[], datetime] = utcnow,
) -> Retirement:
    """Stop publishing a rotated-out key. The key that signs is never retired, nor one whose
    tokens (signed until the next key was added, valid `token_ttl` after that) may still be
    presented: a website checking one would no longer find its key."""
    async with sessions.begin() as session:
        await oidc_repo.lock(session, name="setup")
        stored = list(await oidc_repo.keys(session))
        found = next((i for i, row in enumerate(stored) if row.kid == kid), None)
        if found is None:
            return Retirement(Retired.UNKNOWN)
        if found == 0:
            return Retirement(Retired.CURRENT)
        after = stored[found - 1].created_at + token_ttl
        if clock() < after:
            return Retirement(Retired.STILL_VALID, after)
        await oidc_repo.delete_key(session, kid=kid)
    return Retirement(Retired.RETIRED)


class ProviderKeys:
    """Signs ID tokens, publishes the JWKS and derives pairwise subjects, reading the keys
    from the database each time (a rotation by another process shows at once); parsed keys
    are kept by kid, since parsing a PEM costs far more than reading it."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
        configured_pem: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self._configured = load_key(configured_pem) if configured_pem else None
        self._now = clock
        self._parsed: dict[str, RSAKey] = {}
        self._pairwise: bytes | None = None

    async def ensure(self) -> None:
        """Create what the provider needs on its first start (a signing key unless one is
        configured, and the pairwise secret), once across all processes."""
        async with self._sessions.begin() as session:
            await oidc_repo.lock(session, name="setup")
            if self._configured is None and not await oidc_repo.keys(session):
                kid, pem = new_key()
                await oidc_repo.add_key(session, kid=kid, private_pem=pem, at=self._now())
            if await oidc_repo.get_secret(session, name=PAIRWISE_SECRET) is None:
                await oidc_repo.add_secret(
                    session, name=PAIRWISE_SECRET, value=secrets.token_hex(32), at=self._now()
                )

    async def _keys(self) -> list[RSAKey]:
        """Every published key, the one that signs first."""
        async with self._readers() as session:
            stored = await oidc_repo.keys(session)
        found = [self._configured] if self._configured is not None else []
        for row in stored:
            key = self._parsed.get(row.kid)
            if key is None:
                key = RSAKey.import_key(row.private_pem, parameters=_params(row.kid))
                self._parsed[row.kid] = key
            found.append(key)
        if not found:
            await self.ensure()
            return await self._keys()
        return found

    async def jwks(self) -> dict[str, Any]:
        """The public keys, as `jwks_uri` answers them."""
        keys: list[Key] = list(await self._keys())
        return dict(KeySet(keys).as_dict(private=False))

    async def sign(self, claims: dict[str, Any]) -> str:
        """A JWT of these claims, signed RS256 by the current key, its kid in the header."""
        key = (await self._keys())[0]
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}, claims, key)

    async def subject(self, client_id: str, user_id: int) -> str:
        """The pairwise `sub` of a Telegram account at one client: an HMAC under a secret
        key, so it is stable per client, differs between clients, and reveals neither the
        account nor its number."""
        if self._pairwise is None:
            async with self._readers() as session:
                value = await oidc_repo.get_secret(session, name=PAIRWISE_SECRET)
            if value is None:
                await self.ensure()
                return await self.subject(client_id, user_id)
            self._pairwise = bytes.fromhex(value)
        digest = hmac.new(self._pairwise, f"{client_id}|{user_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
