"""A website logs its users in through the bot: a real OIDC client library (Authlib) runs the
whole flow against the real HTTP server and the real bot, the person answers in the fake
Telegram, and the ID token is verified with another JOSE library (PyJWT) against the
published JWKS."""

from __future__ import annotations

from typing import Any

import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import (
    APP_CALLBACK,
    SHOP_CALLBACK,
    Browser,
    Chat,
    Provider,
    login,
    open_link,
    query_of,
    tap,
)

SCOPE = "openid phone profile"


async def discover(client: AsyncOAuth2Client, issuer: str) -> dict[str, Any]:
    """What a stock client reads first: the provider's metadata."""
    response = await client.request(
        "GET", f"{issuer}/.well-known/openid-configuration", withhold_token=True
    )
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    return metadata


async def verified_id_token(
    client: AsyncOAuth2Client, metadata: dict[str, Any], id_token: str, *, audience: str
) -> dict[str, Any]:
    """The ID token's claims, after checking its RS256 signature against the JWKS."""
    published = await client.request("GET", metadata["jwks_uri"], withhold_token=True)
    keys = jwt.PyJWKSet.from_dict(published.json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        keys[kid].key,
        algorithms=["RS256"],
        audience=audience,
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    return claims


async def test_discovery_describes_the_code_flow_with_every_url_under_the_issuer(
    provider: Provider,
) -> None:
    async with AsyncOAuth2Client() as client:
        # A Host header of the attacker's choosing changes nothing that is published.
        response = await client.request(
            "GET",
            f"{provider.issuer}/.well-known/openid-configuration",
            headers={"Host": "evil.example"},
            withhold_token=True,
        )
    metadata = response.json()
    assert metadata["issuer"] == provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert metadata[endpoint].startswith(provider.issuer + "/")
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert set(metadata["scopes_supported"]) == {"openid", "phone", "profile"}


async def test_a_confidential_client_logs_in_a_logged_in_chat_with_one_tap(
    provider: Provider,
    tg: FakeTelegram,
    verify: FakeVerify,
    person: Browser,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = Chat(tg, 1001, first_name="Ada", username="ada")
    await login(chat, verify)
    starts = len(verify.calls("start"))
    async with AsyncOAuth2Client(
        provider.shop.client_id,
        provider.shop.client_secret,
        scope=SCOPE,
        redirect_uri=SHOP_CALLBACK,
    ) as client:
        metadata = await discover(client, provider.issuer)
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], nonce="n-0S6_WzA2Mj"
        )
        page = await person.open(url)
        assert "Acme Shop" in page.html
        assert page.link.startswith("https://t.me/LoginTestBot?start=")
        assert len(page.token) <= 64
        assert "<svg" in page.html  # the QR code, inline

        question = await open_link(chat, page)
        assert question.text == (
            "Acme Shop (shop.example) asks to log you in as +44 7400 123123. "
            "Tap the number shown on that page:"
        )
        numbers = [text for text, _ in question.inline_buttons][:3]
        assert str(page.number) in numbers
        assert len(set(numbers)) == 3
        assert question.buttons[-1] == "Not me"
        done = await tap(chat, question, str(page.number))
        assert "logged in to Acme Shop" in done.text

        location = await person.answer(page)
        assert location.startswith(SHOP_CALLBACK + "?")
        assert query_of(location)["state"] == state
        token = await client.fetch_token(
            metadata["token_endpoint"], authorization_response=location
        )
        claims = await verified_id_token(
            client, metadata, token["id_token"], audience=provider.shop.client_id
        )
        userinfo = (await client.get(metadata["userinfo_endpoint"])).json()

    assert claims["phone_number"] == "+447400123123"
    assert claims["phone_number_verified"] is True
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["amr"] == ["sms"]
    assert claims["name"] == "Ada"
    assert claims["preferred_username"] == "ada"
    assert isinstance(claims["auth_time"], int)
    assert str(chat.id) not in claims["sub"]
    assert "447400123123" not in claims["sub"]
    assert userinfo == {
        "sub": claims["sub"],
        "phone_number": "+447400123123",
        "phone_number_verified": True,
        "name": "Ada",
        "preferred_username": "ada",
    }
    assert token["token_type"].lower() == "bearer"
    assert "refresh_token" not in token
    # A returning user: no new code was sent.
    assert len(verify.calls("start")) == starts
    async with db() as session:
        events = [
            e.event
            for e in (await session.execute(select(AuthEvent).order_by(AuthEvent.id))).scalars()
        ]
    assert events[-3:] == ["web_request_opened", "web_approved", "web_code_exchanged"][-3:]


async def test_a_public_client_with_pkce_logs_in_a_chat_that_first_proves_its_number(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser
) -> None:
    chat = Chat(tg, 1002, first_name="Grace", username=None)
    verifier = generate_token(48)
    async with AsyncOAuth2Client(
        provider.app.client_id,
        scope="openid phone",
        redirect_uri=APP_CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        metadata = await discover(client, provider.issuer)
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier
        )
        page = await person.open(url)
        first, ask = await chat.send(f"/start {page.token}", replies=2)
        assert first.text == (
            "Acme App asks to log you in with your phone number. First, prove it is yours."
        )
        assert "phone number" in ask.text
        await chat.number("+44 7400 123123")
        verified, question = await chat.send(verify.last_code(), replies=2)
        assert verified.text == "You are logged in as +44 7400 123123."
        assert question.text.startswith("Acme App (127.0.0.1) asks to log you in as +44 7400")
        await tap(chat, question, str(page.number))

        location = await person.answer(page)
        token = await client.fetch_token(
            metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
        claims = await verified_id_token(
            client, metadata, token["id_token"], audience=provider.app.client_id
        )
        userinfo = (await client.get(metadata["userinfo_endpoint"])).json()
    assert claims["phone_number"] == "+447400123123"
    assert "name" not in claims  # no profile scope asked
    assert "nonce" not in claims
    assert userinfo["phone_number"] == "+447400123123"
    assert userinfo["sub"] == claims["sub"]


async def test_client_secret_post_works_and_subjects_are_pairwise(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser
) -> None:
    chat = Chat(tg, 1003)
    await login(chat, verify)
    subjects = []
    for client_id, secret, callback, method in (
        (provider.shop.client_id, provider.shop.client_secret, SHOP_CALLBACK, "client_secret_post"),
        (provider.app.client_id, None, APP_CALLBACK, "none"),
    ):
        verifier = generate_token(48)
        async with AsyncOAuth2Client(
            client_id,
            secret,
            scope="openid",
            redirect_uri=callback,
            code_challenge_method="S256",
            token_endpoint_auth_method=method,
        ) as client:
            metadata = await discover(client, provider.issuer)
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], code_verifier=verifier
            )
            page = await person.open(url)
            await tap(chat, await open_link(chat, page), str(page.number))
            token = await client.fetch_token(
                metadata["token_endpoint"],
                authorization_response=await person.answer(page),
                code_verifier=verifier,
            )
            claims = await verified_id_token(
                client, metadata, token["id_token"], audience=client_id
            )
            assert "phone_number" not in claims  # only openid asked
            subjects.append(claims["sub"])
    assert subjects[0] != subjects[1]


async def test_a_number_proven_by_a_call_is_amr_tel(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser
) -> None:
    chat = Chat(tg, 1004)
    await chat.send("/login")
    (hint,) = await chat.send("+44 7400 123123")
    tg.click(hint, "Call me instead")
    assert "call" in (await tg.next_reply(chat.id, 10)).text
    await chat.say(verify.last_code())
    async with AsyncOAuth2Client(
        provider.shop.client_id,
        provider.shop.client_secret,
        scope="openid",
        redirect_uri=SHOP_CALLBACK,
    ) as client:
        metadata = await discover(client, provider.issuer)
        url, _ = client.create_authorization_url(metadata["authorization_endpoint"])
        page = await person.open(url)
        await tap(chat, await open_link(chat, page), str(page.number))
        token = await client.fetch_token(
            metadata["token_endpoint"], authorization_response=await person.answer(page)
        )
        claims = await verified_id_token(
            client, metadata, token["id_token"], audience=provider.shop.client_id
        )
    assert claims["amr"] == ["tel"]
