"""`python -m bot clients ...` and `python -m bot oidc rotate-key|retire-key`: registering the
websites and rotating the signing key, with nothing but DATABASE_URL."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import OidcClient, OidcKey
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.login.oidc_clients import new_client_id
from tests.helpers import (
    ADMIN_ID,
    HASH_KEY,
    SHOP_CALLBACK,
    Browser,
    Chat,
    Provider,
    authorize_url,
    exchange,
    login,
    open_link,
    query_of,
    run_cli,
    tap,
)


async def test_clients_add_list_remove(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    env = {"DATABASE_URL": database_url}
    added = run_cli(
        "clients",
        "add",
        "--name",
        "Acme Shop",
        "--redirect-uri",
        SHOP_CALLBACK,
        "--redirect-uri",
        "http://localhost:8000/cb",
        "--json",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    shop = json.loads(added.stdout)
    assert set(shop) == {"client_id", "client_secret"}
    assert len(shop["client_secret"]) >= 32
    public = json.loads(
        run_cli(
            "clients",
            "add",
            "--name",
            "Acme App",
            "--redirect-uri",
            SHOP_CALLBACK,
            "--public",
            "--json",
            env=env,
        ).stdout
    )
    assert public["client_secret"] is None

    async with db() as session:
        row = await session.get(OidcClient, shop["client_id"])
        assert row is not None
        # Only the hash of the secret is stored.
        assert row.secret_hash == hashlib.sha256(shop["client_secret"].encode()).hexdigest()
        assert shop["client_secret"] not in (row.redirect_uris, row.name, row.secret_hash)

    listed = json.loads(run_cli("clients", "list", "--json", env=env).stdout)
    assert [(c["client_id"], c["name"], c["public"]) for c in listed] == [
        (shop["client_id"], "Acme Shop", False),
        (public["client_id"], "Acme App", True),
    ]
    assert listed[0]["redirect_uris"] == [SHOP_CALLBACK, "http://localhost:8000/cb"]
    assert shop["client_secret"] not in run_cli("clients", "list", env=env).stdout

    removed = run_cli("clients", "remove", public["client_id"], env=env)
    assert removed.returncode == 0
    assert len(json.loads(run_cli("clients", "list", "--json", env=env).stdout)) == 1
    again = run_cli("clients", "remove", public["client_id"], env=env)
    assert again.returncode == 1
    assert "no client" in again.stderr


def test_a_client_id_can_always_be_given_on_the_command_line() -> None:
    # One id in 64 from token_urlsafe starts with "-", which `clients remove <id>` read as
    # an option (a CI run failed on exactly that).
    ids = {new_client_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(client_id.isascii() and client_id.isalnum() for client_id in ids)
    assert {len(client_id) for client_id in ids} == {22}


async def test_a_bad_redirect_uri_is_refused_and_nothing_is_stored(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    for uri in ("http://shop.example/cb", "https://shop.example/cb#frag", "shop.example/cb"):
        result = run_cli(
            "clients",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            uri,
            env={"DATABASE_URL": database_url},
        )
        assert result.returncode == 2
        assert result.stderr.startswith("error: --redirect-uri")
    async with db() as session:
        assert (await session.execute(select(OidcClient))).first() is None


async def test_rotate_key_signs_with_the_new_key_and_old_tokens_still_verify(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser, database_url: str
) -> None:
    chat = Chat(tg, 1001)
    await login(chat, verify)

    async def id_token() -> str:
        page = await person.open(authorize_url(provider, provider.shop.client_id))
        await tap(chat, await open_link(chat, page), str(page.number))
        code = query_of(await person.answer(page))["code"]
        status, body = await exchange(provider, code)
        assert status == 200
        token: str = body["id_token"]
        return token

    before = await id_token()
    rotated = run_cli("oidc", "rotate-key", env={"DATABASE_URL": database_url})
    assert rotated.returncode == 0, rotated.stderr
    after = await id_token()
    old_kid = jwt.get_unverified_header(before)["kid"]
    new_kid = jwt.get_unverified_header(after)["kid"]
    assert old_kid != new_kid
    assert new_kid in rotated.stdout

    status, _, _ = await person.get(f"{provider.issuer}/jwks")
    async with person.http.get(f"{provider.issuer}/jwks") as response:
        keys = jwt.PyJWKSet.from_dict(await response.json())
    assert status == 200
    assert {key.key_id for key in keys.keys} == {old_kid, new_kid}
    for token, kid in ((before, old_kid), (after, new_kid)):
        claims = jwt.decode(
            token,
            keys[kid].key,
            algorithms=["RS256"],
            audience=provider.shop.client_id,
            issuer=provider.issuer,
        )
        assert claims["phone_number"] == "+447400123123"


async def test_retire_key_unpublishes_a_rotated_out_key_once_its_tokens_expired(
    provider: Provider,
    tg: FakeTelegram,
    verify: FakeVerify,
    person: Browser,
    database_url: str,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = Chat(tg, 1001)
    await login(chat, verify)
    env = {"DATABASE_URL": database_url}

    async def published() -> set[str]:
        async with person.http.get(f"{provider.issuer}/jwks") as response:
            return {key["kid"] for key in (await response.json())["keys"]}

    async def signing_kid() -> str:
        page = await person.open(authorize_url(provider, provider.shop.client_id))
        await tap(chat, await open_link(chat, page), str(page.number))
        status, body = await exchange(provider, query_of(await person.answer(page))["code"])
        assert status == 200
        return str(jwt.get_unverified_header(body["id_token"])["kid"])

    (first,) = await published()
    refused = run_cli("oidc", "retire-key", first, env=env)
    assert refused.returncode == 1
    assert "is the current signing key; run `oidc rotate-key` first" in refused.stderr
    second = run_cli("oidc", "rotate-key", env=env).stdout.split()[3].rstrip(":")
    assert await published() == {first, second}
    # Tokens the first key signed a moment ago are still valid for 5 minutes.
    early = run_cli("oidc", "retire-key", first, env=env)
    assert early.returncode == 1
    assert f"ID tokens signed by {first} may still be valid; retire it after" in early.stderr
    assert await published() == {first, second}
    # Six minutes later (the keys' ages are what counts):
    async with db.begin() as session:
        for key in (await session.execute(select(OidcKey))).scalars():
            key.created_at -= timedelta(minutes=6)
    retired = run_cli("oidc", "retire-key", first, env=env)
    assert retired.returncode == 0, retired.stderr
    assert retired.stdout == f"Retired signing key {first}: the JWKS no longer publishes it.\n"
    assert await published() == {second}
    assert await signing_kid() == second
    assert run_cli("oidc", "retire-key", second, env=env).returncode == 1
    unknown = run_cli("oidc", "retire-key", first, env=env)
    assert (unknown.returncode, unknown.stderr) == (1, f"error: no stored signing key {first}\n")
    assert await published() == {second}


async def test_web_logins_show_in_events_and_in_stats_per_client(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser, database_url: str
) -> None:
    chat = Chat(tg, 1001)
    await login(chat, verify)
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(chat, await open_link(chat, page), str(page.number))
    status, _ = await exchange(provider, query_of(await person.answer(page))["code"])
    assert status == 200
    refused = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(chat, await open_link(chat, refused), "Not me")

    env = {"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY}
    events = run_cli("events", env=env).stdout
    for event in ("web_request_opened", "web_approved", "web_code_exchanged"):
        assert event in events
    assert f"web_refused ({provider.shop.client_id} not_me)" in events
    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["web_logins"] == {provider.shop.client_id: {"name": "Acme Shop", "logins": 1}}
    admin = Chat(tg, ADMIN_ID)
    assert f"Web logins per client: Acme Shop ({provider.shop.client_id}) 1" in (
        await admin.say("/stats")
    )
