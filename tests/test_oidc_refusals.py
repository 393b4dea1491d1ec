"""Every way a web login is refused: at the authorization endpoint (never redirected to an
unregistered address; otherwise back to the website with `error` and `state`), in Telegram
(links and buttons work once, in one chat, and only with the page's number), and at the
token endpoint (codes work once, in time, for their client, redirect URI and PKCE verifier)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, LoginFlow, OidcRequest
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.weblogin import CONFIRM_CALLBACK
from bot.web.oidc import MAX_FORM
from tests.helpers import (
    APP_CALLBACK,
    SHOP_CALLBACK,
    Browser,
    Chat,
    Clock,
    LoginPage,
    Provider,
    authorize_url,
    exchange,
    login,
    open_link,
    query_of,
    tap,
)

VERIFIER = "v" * 43 + "-verifier._~"
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
)


async def refusals(db: async_sessionmaker[AsyncSession]) -> list[str]:
    """The details of the web_refused events, oldest first."""
    async with db() as session:
        rows = await session.execute(
            select(AuthEvent.detail).where(AuthEvent.event == "web_refused").order_by(AuthEvent.id)
        )
    return [str(detail).split(" ", 1)[-1] for detail in rows.scalars()]


async def approved_code(
    provider: Provider, person: Browser, chat: Chat, **params: str
) -> tuple[str, LoginPage]:
    """Run the flow as far as the code (the chat is logged in already)."""
    page = await person.open(authorize_url(provider, provider.shop.client_id, **params))
    await tap(chat, await open_link(chat, page), str(page.number))
    location = await person.answer(page)
    return query_of(location)["code"], page


async def userinfo_status(provider: Provider, access_token: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{provider.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        ) as response,
    ):
        return response.status


@pytest.fixture
async def ada(provider: Provider, tg: FakeTelegram, verify: FakeVerify) -> Chat:
    """A chat logged in as +44 7400 123123."""
    chat = Chat(tg, 1001)
    await login(chat, verify)
    return chat


# ---- the authorization endpoint ---------------------------------------------------------


async def test_an_unregistered_redirect_uri_gets_an_error_page_and_is_never_redirected_to(
    provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    for uri in ("https://evil.example/callback", SHOP_CALLBACK + "/", SHOP_CALLBACK + "?x=1"):
        status, body, location = await person.get(
            authorize_url(provider, provider.shop.client_id, redirect_uri=uri)
        )
        assert (status, location) == (400, None)
        assert "not registered" in body
        assert "evil.example" not in body
    # One address refused thrice for the same reason: recorded once (see the flood test).
    assert await refusals(db) == ["unregistered_redirect_uri"]


async def test_an_unknown_client_gets_an_error_page(
    provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    status, body, location = await person.get(authorize_url(provider, "no-such-client"))
    assert (status, location) == (400, None)
    assert "is not registered with this bot" in body
    assert await refusals(db) == ["unknown_client"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "phone"}, "invalid_scope"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_other_bad_requests_go_back_to_the_website_with_error_and_state(
    provider: Provider, person: Browser, params: dict[str, str], error: str
) -> None:
    status, _, location = await person.get(
        authorize_url(provider, provider.shop.client_id, **params)
    )
    assert status == 302
    assert location is not None
    assert location.startswith(SHOP_CALLBACK + "?")
    assert query_of(location)["error"] == error
    assert query_of(location)["state"] == "st-123"


async def test_prompt_none_answers_login_required_without_showing_anything(
    provider: Provider, ada: Chat, person: Browser, tg: FakeTelegram
) -> None:
    status, body, location = await person.get(
        authorize_url(provider, provider.shop.client_id, prompt="none")
    )
    assert status == 302
    assert location is not None
    assert query_of(location) == {
        "error": "login_required",
        "error_description": "the person must confirm in Telegram",
        "state": "st-123",
        "iss": provider.issuer,
    }
    assert body == "" or "t.me" not in body
    assert await ada.quiet() == []


async def test_a_public_client_without_pkce_is_refused(provider: Provider, person: Browser) -> None:
    url = authorize_url(provider, provider.app.client_id, redirect_uri=APP_CALLBACK)
    status, _, location = await person.get(url)
    assert status == 302
    assert location is not None
    assert location.startswith(APP_CALLBACK)
    assert query_of(location)["error"] == "invalid_request"


async def test_nul_characters_get_clear_answers_and_change_nothing(
    provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL cannot store or compare text with NUL: each would have failed a query (500).
    status, body, _ = await person.get(authorize_url(provider, "abc\x00def"))
    assert status == 400
    assert "is not registered with this bot" in body
    for name in ("state", "nonce", "prompt"):
        status, _, location = await person.get(
            authorize_url(provider, provider.shop.client_id, **{name: "a\x00b"})
        )
        assert status == 302
        assert location is not None
        assert query_of(location)["error_description"] == (
            "parameters must not contain NUL characters"
        )
    status, _, _ = await person.get(f"{provider.issuer}/authorize/ab%00cd")
    assert status == 404
    async with person.http.get(f"{provider.issuer}/authorize/ab%00cd/status") as response:
        assert (await response.json())["status"] == "unknown"
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": SHOP_CALLBACK}
    async with person.http.post(
        f"{provider.issuer}/token", data={**form, "client_id": "a\x00b"}
    ) as response:
        assert (response.status, (await response.json())["error"]) == (401, "invalid_client")
    status, body_json = await exchange(provider, "x", client_id="a\x00b", secret="s")
    assert (status, body_json["error"]) == (401, "invalid_client")
    async with db() as session:
        assert (await session.execute(select(OidcRequest))).first() is None


async def test_a_repeated_parameter_is_refused(provider: Provider, person: Browser) -> None:
    url = authorize_url(provider, provider.shop.client_id) + "&scope=openid"
    status, _, location = await person.get(url)
    assert status == 302
    assert location is not None
    assert query_of(location)["error"] == "invalid_request"


class TestLimits:
    @pytest.fixture
    def provider_settings(self) -> dict[str, Any]:
        return {"limit_web_requests_per_ip_per_hour": 2}

    async def test_requests_per_address_are_limited_and_forwarded_for_counts_from_the_proxy(
        self, provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
    ) -> None:
        url = authorize_url(provider, provider.shop.client_id)
        for _ in range(2):
            await person.open(url)
        status, _, location = await person.get(url)
        assert status == 302
        assert location is not None
        assert query_of(location)["error"] == "temporarily_unavailable"
        # Through the (loopback, trusted) proxy, another client address has its own count.
        async with person.http.get(
            url, allow_redirects=False, headers={"X-Forwarded-For": "203.0.113.7"}
        ) as response:
            assert response.status == 200
        assert await refusals(db) == ["rate_limited_ip"]

    async def test_a_flood_of_refused_requests_records_each_refusal_once_per_address(
        self, provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
    ) -> None:
        shop = authorize_url(provider, provider.shop.client_id)
        authorize = [
            authorize_url(provider, "no-such-client"),
            authorize_url(provider, provider.shop.client_id, redirect_uri="https://evil.example"),
            authorize_url(provider, provider.shop.client_id, response_type="token"),
            shop,  # the first two open requests, the rest are over the address's limit
        ]
        token = [
            ("no-such-client", "secret", "some-code"),
            (provider.shop.client_id, "not-the-secret", "some-code"),
            (provider.app.client_id, "", "made-up-code"),
        ]

        async def flood(address: str) -> None:
            forwarded = {"X-Forwarded-For": address}
            for _ in range(8):
                for url in authorize:
                    async with person.http.get(
                        url, allow_redirects=False, headers=forwarded
                    ) as response:
                        assert response.status in (200, 302, 400)
                for client_id, secret, code in token:
                    async with person.http.post(
                        f"{provider.issuer}/token",
                        data={
                            "grant_type": "authorization_code",
                            "code": code,
                            "redirect_uri": APP_CALLBACK,
                            "client_id": client_id,
                            **({"client_secret": secret} if secret else {}),
                        },
                        headers=forwarded,
                    ) as response:
                        assert response.status in (400, 401)

        async def events() -> list[str]:
            async with db() as session:
                rows = await session.execute(select(AuthEvent.event))
            return sorted(rows.scalars())

        # (An unknown client is one reason, at /authorize or at /token.)
        kinds = [
            "unknown_client",
            "unregistered_redirect_uri",
            "unsupported_response_type",
            "rate_limited_ip",
            "bad_client_secret",
            "code_unknown",
        ]
        await flood("203.0.113.7")
        assert sorted(await refusals(db)) == sorted(kinds)
        assert await events() == ["web_refused"] * 6 + ["web_request_opened"] * 2
        # Another address's refusals are recorded too (once each).
        await flood("198.51.100.23")
        assert sorted(await refusals(db)) == sorted(kinds * 2)
        async with db() as session:
            assert await session.scalar(select(func.count()).select_from(AuthEvent)) == 16

    async def test_ipv6_addresses_are_counted_per_64_and_mapped_ipv4_as_ipv4(
        self, provider: Provider, person: Browser
    ) -> None:
        url = authorize_url(provider, provider.shop.client_id)

        async def status_from(address: str) -> int:
            async with person.http.get(
                url, allow_redirects=False, headers={"X-Forwarded-For": address}
            ) as response:
                return response.status

        same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:3::4"]
        assert [await status_from(address) for address in same_64] == [200, 200, 302]
        assert await status_from("2001:db8:1:3::1") == 200
        assert [await status_from("192.0.2.9") for _ in range(2)] == [200, 200]
        assert await status_from("::ffff:192.0.2.9") == 302


class TestSharedLimits:
    @pytest.fixture
    def provider_settings(self) -> dict[str, Any]:
        return {
            "limit_web_requests_per_ip_per_hour": 5,
            "limit_web_requests_per_client_per_hour": 10,
        }

    async def test_addresses_at_their_own_limit_cannot_lock_everyone_else_out(
        self, provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
    ) -> None:
        url = authorize_url(provider, provider.shop.client_id)

        async def open_from(address: str) -> str | None:
            """The error a request from this address gets (None: the page opened)."""
            async with person.http.get(
                url, allow_redirects=False, headers={"X-Forwarded-For": address}
            ) as response:
                if response.status == 200:
                    return None
                assert response.status == 302
                return query_of(response.headers["Location"])["error"]

        # Two addresses open as many requests as each may: the website's hourly cap is spent.
        for address in ("203.0.113.1", "203.0.113.2"):
            assert [await open_from(address) for _ in range(5)] == [None] * 5
        assert await open_from("203.0.113.1") == "temporarily_unavailable"
        # Everybody else still gets in, a few requests an hour per address...
        for address in ("198.51.100.1", "2001:db8:7::1"):
            assert [await open_from(address) for _ in range(3)] == [None] * 3
            # ... and no more while the website is over its cap.
            assert await open_from(address) == "temporarily_unavailable"
        assert sorted(set(await refusals(db))) == ["rate_limited_client", "rate_limited_ip"]


# ---- the deep link and the confirmation in Telegram -------------------------------------


async def test_an_unknown_link_gets_a_clear_answer_and_starts_nothing(
    provider: Provider, tg: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = Chat(tg, 1005)
    answer = await chat.say("/start c29tZXRoaW5nLWVsc2U")
    assert answer.startswith("I don't know that login link.")
    async with db() as session:
        assert (await session.execute(select(LoginFlow))).first() is None


async def test_a_replayed_unknown_link_is_recorded_once(
    provider: Provider, tg: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = Chat(tg, 1005)
    for _ in range(4):
        assert (await chat.say("/start c29tZXRoaW5nLWVsc2U")).startswith("I don't know")
    assert await refusals(db) == ["link_unknown"]


async def test_an_expired_link_is_refused_and_the_page_offers_to_start_again(
    provider: Provider, ada: Chat, person: Browser, clock: Clock
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    clock.advance(301)
    assert await ada.say(f"/start {page.token}") == (
        "That login link has expired. Start again on the website."
    )
    status, body, _ = await person.get(page.wait_url)
    assert status == 200
    assert "expired" in body
    assert f'href="/authorize?response_type=code&amp;client_id={provider.shop.client_id}' in body
    async with person.http.get(page.status_url) as response:
        assert (await response.json())["status"] == "expired"


async def test_a_link_works_once_and_only_in_the_chat_that_opened_it(
    provider: Provider,
    ada: Chat,
    tg: FakeTelegram,
    person: Browser,
    db: async_sessionmaker[AsyncSession],
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    question = await open_link(ada, page)
    other = Chat(tg, 1006)
    used = "That login link was already used."
    assert (await other.say(f"/start {page.token}")).startswith(used)
    assert (await ada.say(f"/start {page.token}")).startswith(used)
    async with db() as session:
        assert await session.get(LoginFlow, other.id) is None
    # The first question still works.
    await tap(ada, question, str(page.number))
    assert query_of(await person.answer(page))["code"]


async def test_a_confirmation_pressed_in_another_chat_changes_nothing(
    provider: Provider, ada: Chat, tg: FakeTelegram, person: Browser
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    question = await open_link(ada, page)
    right = question.callback_data(str(page.number))
    # Another chat with a confirmation of its own replays Ada's button data on it.
    other = Chat(tg, 1007)
    other_page = await person.open(authorize_url(provider, provider.shop.client_id))
    other_message = (await other.send(f"/start {other_page.token}", replies=2))[0]
    tg.press_button(other.id, other_message.message_id, right, strict=False)
    await tg.wait_for(lambda: len(tg.callback_answers) == 1, 10)
    assert tg.callback_answers[-1].text == "This button belongs to another chat."
    assert tg.callback_answers[-1].show_alert
    async with person.http.get(page.status_url) as response:
        assert (await response.json())["status"] == "waiting"
    # Ada's own tap still approves.
    await tap(ada, question, str(page.number))
    assert query_of(await person.answer(page))["code"]


async def test_a_forged_button_with_a_nul_changes_nothing(
    provider: Provider, ada: Chat, tg: FakeTelegram, person: Browser
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    question = await open_link(ada, page)
    right = question.callback_data(str(page.number))
    request_id = right.removeprefix(CONFIRM_CALLBACK).partition(":")[0]
    forged = right.replace(request_id, request_id[:5] + "\x00" + request_id[6:])
    tg.press_button(ada.id, question.message_id, forged, strict=False)
    await tg.wait_for(lambda: len(tg.callback_answers) == 1, 10)
    assert tg.callback_answers[-1].text == "This login request was already answered."
    await tap(ada, question, str(page.number))
    assert query_of(await person.answer(page))["code"]


async def test_a_wrong_number_refuses_and_the_website_gets_access_denied(
    provider: Provider, ada: Chat, tg: FakeTelegram, person: Browser
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    question = await open_link(ada, page)
    right = question.callback_data(str(page.number))
    wrong = next(text for text, _ in question.inline_buttons[:3] if text != str(page.number))
    done = await tap(ada, question, wrong)
    assert done.text.startswith("That is not the number shown on the page, so I refused")
    assert done.inline_buttons == []
    location = await person.answer(page)
    assert query_of(location)["error"] == "access_denied"
    assert query_of(location)["state"] == "st-123"
    # The buttons worked once: a second tap (on the old message) answers nothing new.
    tg.press_button(ada.id, question.message_id, right, strict=False)
    await tg.wait_for(lambda: len(tg.callback_answers) == 2, 10)
    assert tg.callback_answers[-1].text == "This login request was already answered."


async def test_every_answer_to_the_website_names_the_issuer(
    provider: Provider, ada: Chat, person: Browser
) -> None:
    # RFC 9207: a website that uses several providers checks `iss` before it sends the code
    # to a token endpoint, so a code (or an error) cannot be passed off as another's.
    _, body, _ = await person.get(f"{provider.issuer}/.well-known/openid-configuration")
    assert json.loads(body)["authorization_response_iss_parameter_supported"] is True
    refused = await person.get(authorize_url(provider, provider.shop.client_id, scope="phone"))
    assert refused[2] is not None
    assert query_of(refused[2])["iss"] == provider.issuer
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(ada, await open_link(ada, page), "Not me")
    denied = query_of(await person.answer(page))
    assert (denied["error"], denied["iss"]) == ("access_denied", provider.issuer)
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(ada, await open_link(ada, page), str(page.number))
    approved = query_of(await person.answer(page))
    assert approved["iss"] == provider.issuer
    assert (await exchange(provider, approved["code"]))[0] == 200


async def test_not_me_refuses(provider: Provider, ada: Chat, person: Browser) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    done = await tap(ada, await open_link(ada, page), "Not me")
    assert done.text == "OK: I refused the login to Acme Shop. Nobody was logged in."
    assert query_of(await person.answer(page))["error"] == "access_denied"


async def test_another_browser_cannot_follow_the_page(
    provider: Provider, ada: Chat, person: Browser
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(ada, await open_link(ada, page), str(page.number))
    thief = Browser()
    try:
        status, _, location = await thief.get(page.wait_url)
    finally:
        await thief.close()
    assert (status, location) == (404, None)
    assert query_of(await person.answer(page))["code"]


async def test_the_pages_polling_takes_no_lock_so_a_flood_of_it_blocks_nothing(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    # Someone else's write holds the request's row (and on SQLite the database's write lock):
    # the polling and the meta refresh still answer at once.
    async with db.begin() as session:
        await session.execute(update(OidcRequest).values(state=OidcRequest.state))
        timeout = aiohttp.ClientTimeout(total=5)
        async with person.http.get(page.status_url, timeout=timeout) as response:
            assert (await response.json())["status"] == "waiting"
        async with person.http.get(page.wait_url, timeout=timeout) as response:
            assert response.status == 200
            assert str(page.number) in await response.text()
    # Following the answer still issues the code (that one writes).
    await tap(ada, await open_link(ada, page), str(page.number))
    assert (await exchange(provider, query_of(await person.answer(page))["code"]))[0] == 200


@pytest.mark.parametrize("params", [{"max_age": "0"}, {"prompt": "login"}])
async def test_max_age_0_and_prompt_login_prove_the_number_again(
    provider: Provider,
    ada: Chat,
    verify: FakeVerify,
    person: Browser,
    clock: Clock,
    params: dict[str, str],
) -> None:
    clock.advance(5)
    starts = len(verify.calls("start"))
    page = await person.open(authorize_url(provider, provider.shop.client_id, **params))
    first, _ = await ada.send(f"/start {page.token}", replies=2)
    assert "First, prove it is yours" in first.text
    assert "code is on its way" in await ada.number("+44 7400 123123")
    assert len(verify.calls("start")) == starts + 1
    _, question = await ada.send(verify.last_code(), replies=2)
    await tap(ada, question, str(page.number))
    code = query_of(await person.answer(page))["code"]
    status, token = await exchange(provider, code)
    assert status == 200
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["auth_time"] >= int(clock.now.timestamp()) - 1


# ---- the token endpoint ---------------------------------------------------------------------


async def test_a_wrong_client_secret_is_refused(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    code, _ = await approved_code(provider, person, ada)
    status, body = await exchange(provider, code, secret="not-the-secret")
    assert (status, body["error"]) == (401, "invalid_client")
    assert "bad_client_secret" in await refusals(db)
    # The code itself is still good for the real client.
    assert (await exchange(provider, code))[0] == 200


async def test_a_reused_code_is_refused_and_revokes_the_access_token_it_gave(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    code, _ = await approved_code(provider, person, ada)
    status, first = await exchange(provider, code)
    assert status == 200
    assert await userinfo_status(provider, first["access_token"]) == 200
    status, second = await exchange(provider, code)
    assert (status, second["error"]) == (400, "invalid_grant")
    assert await userinfo_status(provider, first["access_token"]) == 401
    assert "code_reused" in await refusals(db)


async def test_an_expired_code_is_refused(
    provider: Provider, ada: Chat, person: Browser, clock: Clock
) -> None:
    code, _ = await approved_code(provider, person, ada)
    clock.advance(61)
    status, body = await exchange(provider, code)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert body["error_description"] == "the code has expired"


async def test_a_code_is_bound_to_its_redirect_uri_and_client(
    provider: Provider, ada: Chat, person: Browser
) -> None:
    code, _ = await approved_code(provider, person, ada)
    status, body = await exchange(provider, code, client_id=provider.app.client_id, secret="")
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await exchange(provider, code, redirect_uri=SHOP_CALLBACK + "/other")
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("verifier", "description"),
    [
        (None, "code_verifier is missing"),
        ("w" * 43, "code_verifier does not match the code_challenge"),
    ],
)
async def test_a_missing_or_wrong_pkce_verifier_is_refused(
    provider: Provider, ada: Chat, person: Browser, verifier: str | None, description: str
) -> None:
    code, _ = await approved_code(
        provider, person, ada, code_challenge=CHALLENGE, code_challenge_method="S256"
    )
    extra = {"code_verifier": verifier} if verifier else {}
    status, body = await exchange(provider, code, **extra)
    assert (status, body["error"], body["error_description"]) == (
        400,
        "invalid_grant",
        description,
    )
    # A code is good for one try: even the right verifier fails now.
    status, _ = await exchange(provider, code, code_verifier=VERIFIER)
    assert status == 400


async def test_the_right_pkce_verifier_is_accepted_from_a_confidential_client(
    provider: Provider, ada: Chat, person: Browser
) -> None:
    code, _ = await approved_code(
        provider, person, ada, code_challenge=CHALLENGE, code_challenge_method="S256"
    )
    status, body = await exchange(provider, code, code_verifier=VERIFIER)
    assert status == 200
    assert body["token_type"] == "Bearer"


async def test_an_expired_access_token_is_refused_by_userinfo(
    provider: Provider, ada: Chat, person: Browser, clock: Clock
) -> None:
    code, _ = await approved_code(provider, person, ada)
    _, token = await exchange(provider, code)
    clock.advance(301)
    assert await userinfo_status(provider, token["access_token"]) == 401
    assert await userinfo_status(provider, "made-up") == 401


async def test_forget_erases_the_web_logins_of_the_chat(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    page = await person.open(authorize_url(provider, provider.shop.client_id))
    await tap(ada, await open_link(ada, page), str(page.number))
    async with db() as session:
        assert (await session.execute(select(OidcRequest.phone_number))).scalars().all() == [
            "+447400123123"
        ]
    confirm = (await ada.send("/forget"))[0]
    ada.tg.click(confirm, "Yes, erase everything")
    await ada.tg.wait_for(lambda: confirm.edited, 10)
    async with db() as session:
        assert (await session.execute(select(OidcRequest))).first() is None


async def test_the_token_endpoint_itself_requires_pkce_from_a_public_client(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    verifier = generate_token(48)
    async with AsyncOAuth2Client(
        provider.app.client_id,
        scope="openid phone",
        redirect_uri=APP_CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _ = client.create_authorization_url(
            f"{provider.issuer}/authorize", code_verifier=verifier
        )
        page = await person.open(url)
        await tap(ada, await open_link(ada, page), str(page.number))
        location = await person.answer(page)
        # A code of a public client's request that carries no challenge (whatever let it
        # through): the token endpoint does not take the authorization endpoint's word for it.
        async with db.begin() as session:
            await session.execute(update(OidcRequest).values(code_challenge=None))
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(f"{provider.issuer}/token", authorization_response=location)
    assert refused.value.error == "invalid_grant"
    assert refused.value.description == "a public client must use PKCE (code_verifier)"
    assert "pkce_missing" in await refusals(db)


async def test_a_verifier_without_a_challenge_is_refused(
    provider: Provider, ada: Chat, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    async with AsyncOAuth2Client(
        provider.shop.client_id,
        provider.shop.client_secret,
        scope="openid",
        redirect_uri=SHOP_CALLBACK,
    ) as client:
        url, _ = client.create_authorization_url(f"{provider.issuer}/authorize")
        page = await person.open(url)
        await tap(ada, await open_link(ada, page), str(page.number))
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(
                f"{provider.issuer}/token",
                authorization_response=await person.answer(page),
                code_verifier=VERIFIER,
            )
    assert refused.value.error == "invalid_grant"
    assert "pkce_unexpected" in await refusals(db)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_token_request_is_refused_unread_and_changes_nothing(
    provider: Provider, ada: Chat, person: Browser, chunked: bool
) -> None:
    code, _ = await approved_code(provider, person, ada)
    form = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SHOP_CALLBACK,
            "padding": "x" * (MAX_FORM + 1),
        }
    ).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(form), 8192):
            yield form[start : start + 8192]

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{provider.issuer}/token",
            data=pieces() if chunked else form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": aiohttp.encode_basic_auth(
                    provider.shop.client_id, provider.shop.client_secret or ""
                ),
            },
        ) as response,
    ):
        assert response.status == 413
        assert await response.json() == {
            "error": "invalid_request",
            "error_description": f"the request body is larger than {MAX_FORM} bytes",
        }
    # The code was not spent: the website's own request still gets its tokens.
    assert (await exchange(provider, code))[0] == 200


async def test_an_oversized_authorization_form_is_refused_and_opens_nothing(
    provider: Provider, person: Browser, db: async_sessionmaker[AsyncSession]
) -> None:
    form = dict(query_of(authorize_url(provider, provider.shop.client_id)))
    form["nonce"] = "n" * (MAX_FORM + 1)
    async with person.http.post(
        f"{provider.issuer}/authorize", data=form, allow_redirects=False
    ) as response:
        assert response.status == 413
        assert "too large" in await response.text()
    async with db() as session:
        assert (await session.execute(select(OidcRequest))).first() is None
