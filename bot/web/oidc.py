"""The OpenID Connect endpoints (aiohttp): discovery, JWKS, the authorization page and its
status, the token endpoint and userinfo. They only translate HTTP to `bot.login.weblogin`
and back. Every URL they publish is built from OIDC_ISSUER, never from the request's Host
header; they are mounted under the issuer's path.

    GET  {issuer}/.well-known/openid-configuration
    GET  {issuer}/jwks
    GET  {issuer}/authorize            (POST too: OIDC Core 3.1.2.1) the login page
    GET  {issuer}/authorize/{id}       the page again (its meta refresh), or the way back
    GET  {issuer}/authorize/{id}/status   {"status": "waiting" | "go" | "expired" | ...}
    POST {issuer}/token
    GET  {issuer}/userinfo             (POST too)
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from aiohttp import web

from bot import texts
from bot.login.weblogin import (
    ErrorPage,
    ErrorRedirect,
    Opened,
    TokenError,
    TokenRequest,
    View,
    WebLogin,
)
from bot.web import pages
from bot.web.clientip import Network, client_ip
from bot.web.server import Handler, answers_pages

logger = logging.getLogger(__name__)

COOKIE_PREFIX = "login-"
COOKIE_SECONDS = 600
# Anything a browser or a website sends here is small; a larger body is refused unread (by
# its Content-Length) or as soon as it is known to be larger.
MAX_FORM = 64 * 1024

_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PUBLIC = {"Access-Control-Allow-Origin": "*"}


@dataclass(frozen=True, slots=True)
class OidcEdge:
    """What the endpoints need: the provider (None until the bot has started), the bot's
    username for the t.me link, and the proxies whose X-Forwarded-For is believed."""

    provider: Callable[[], tuple[WebLogin, str] | None]
    trusted_proxies: Sequence[Network]


def oidc_routes(issuer: str, edge: OidcEdge) -> list[web.RouteDef]:
    """The routes, under the path of OIDC_ISSUER."""
    base = urlsplit(issuer).path.rstrip("/")

    def started(
        handler: Callable[[web.Request, WebLogin, str], Awaitable[web.StreamResponse]],
    ) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            provider = edge.provider()
            if provider is None:
                return pages.html_response(pages.message_page(texts.PAGE_STARTING), status=503)
            return await handler(request, *provider)

        return wrapped

    async def discovery(request: web.Request, login: WebLogin, _: str) -> web.StreamResponse:
        return web.json_response(
            login.discovery(), headers={**_PUBLIC, "Cache-Control": "max-age=300"}
        )

    async def jwks(request: web.Request, login: WebLogin, _: str) -> web.StreamResponse:
        return web.json_response(
            await login.jwks(), headers={**_PUBLIC, "Cache-Control": "max-age=300"}
        )

    async def authorize(request: web.Request, login: WebLogin, bot: str) -> web.StreamResponse:
        params: list[tuple[str, str]] = list(request.query.items())
        if request.method == "POST":
            form = await _form(request)
            if form is None:
                return pages.html_response(
                    pages.message_page(texts.PAGE_ERROR_TITLE, texts.PAGE_TOO_LARGE), status=413
                )
            params = form
        result = await login.open_request(params, client_ip=_client_ip(request, edge))
        if isinstance(result, ErrorPage):
            return pages.html_response(
                pages.message_page(
                    texts.PAGE_ERROR_TITLE,
                    texts.PAGE_ERRORS.get(result.reason, ""),
                    texts.PAGE_ERROR_HINT,
                ),
                status=400,
            )
        if isinstance(result, ErrorRedirect):
            raise web.HTTPFound(result.location, headers={"Cache-Control": "no-store"})
        return _waiting(result, bot, set_cookie=True)

    def _waiting(opened: Opened, bot: str, *, set_cookie: bool) -> web.Response:
        page = opened.page
        nonce = secrets.token_urlsafe(16)
        wait_url = f"{base}/authorize/{page.request_id}"
        response = pages.html_response(
            pages.waiting_page(
                page,
                bot_username=bot,
                wait_url=wait_url,
                status_url=f"{wait_url}/status",
                nonce=nonce,
            ),
            nonce=nonce,
        )
        if set_cookie:
            response.set_cookie(
                COOKIE_PREFIX + page.request_id,
                opened.browser_secret,
                max_age=COOKIE_SECONDS,
                path=wait_url,
                secure=issuer.startswith("https://"),
                httponly=True,
                samesite="Lax",
            )
        return response

    async def wait(request: web.Request, login: WebLogin, bot: str) -> web.StreamResponse:
        request_id = request.match_info["id"]
        secret = request.cookies.get(COOKIE_PREFIX + request_id, "")
        state = await login.browser_state(request_id, secret, leave=True)
        if state.view is View.GO and state.location is not None:
            raise web.HTTPFound(state.location, headers={"Cache-Control": "no-store"})
        if state.view is View.WAITING and state.page is not None:
            return _waiting(Opened(state.page, secret), bot, set_cookie=False)
        if state.view is View.EXPIRED and state.page is not None:
            restart = f"{base}/authorize?{state.page.restart_query}"
            return pages.html_response(pages.expired_page(restart))
        if state.view is View.FINISHED:
            return pages.html_response(
                pages.message_page(texts.PAGE_FINISHED_TITLE, texts.PAGE_FINISHED)
            )
        return pages.html_response(
            pages.message_page(texts.PAGE_UNKNOWN_TITLE, texts.PAGE_UNKNOWN), status=404
        )

    async def status(request: web.Request, login: WebLogin, _: str) -> web.StreamResponse:
        request_id = request.match_info["id"]
        secret = request.cookies.get(COOKIE_PREFIX + request_id, "")
        state = await login.browser_state(request_id, secret, leave=False)
        return web.json_response({"status": state.view.name.lower()}, headers=_JSON_HEADERS)

    async def token(request: web.Request, login: WebLogin, _: str) -> web.StreamResponse:
        form = await _form(request)
        if form is None:
            return _token_error(_TOO_LARGE)
        fields = dict(form)
        try:
            basic = _basic_credentials(request.headers.get("Authorization"))
        except ValueError:
            return _token_error(TokenError("invalid_client", "malformed Basic credentials", 401))
        result = await login.exchange(
            TokenRequest(
                grant_type=fields.get("grant_type"),
                code=fields.get("code"),
                redirect_uri=fields.get("redirect_uri"),
                code_verifier=fields.get("code_verifier"),
                client_id=fields.get("client_id"),
                client_secret=fields.get("client_secret"),
                basic=basic,
                client_ip=_client_ip(request, edge),
            )
        )
        if isinstance(result, TokenError):
            return _token_error(result)
        return web.json_response(
            {
                "access_token": result.access_token,
                "token_type": "Bearer",
                "expires_in": result.expires_in,
                "id_token": result.id_token,
                "scope": result.scope,
            },
            headers={**_JSON_HEADERS, **_PUBLIC},
        )

    async def userinfo(request: web.Request, login: WebLogin, _: str) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, access_token = header.partition(" ")
        if scheme.lower() != "bearer" and request.method == "POST":
            form = await _form(request)
            if form is None:
                return _token_error(_TOO_LARGE)
            access_token = dict(form).get("access_token", "")
        elif scheme.lower() != "bearer":
            access_token = ""
        if not access_token:
            return _unauthorized('Bearer realm="userinfo"')
        claims = await login.userinfo(access_token.strip())
        if claims is None:
            return _unauthorized('Bearer error="invalid_token"')
        return web.json_response(claims, headers={**_JSON_HEADERS, **_PUBLIC})

    async def preflight(request: web.Request) -> web.StreamResponse:
        # Single-page apps (public clients) call these from the browser.
        return web.Response(
            status=204,
            headers={
                **_PUBLIC,
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    page_route = answers_pages(started(authorize))
    return [
        web.get(f"{base}/.well-known/openid-configuration", started(discovery)),
        web.get(f"{base}/jwks", started(jwks)),
        web.get(f"{base}/authorize", page_route),
        web.post(f"{base}/authorize", page_route),
        web.get(f"{base}/authorize/{{id}}", answers_pages(started(wait))),
        web.get(f"{base}/authorize/{{id}}/status", started(status)),
        web.post(f"{base}/token", started(token)),
        web.options(f"{base}/token", preflight),
        web.get(f"{base}/userinfo", started(userinfo)),
        web.post(f"{base}/userinfo", started(userinfo)),
        web.options(f"{base}/userinfo", preflight),
    ]


def _client_ip(request: web.Request, edge: OidcEdge) -> str:
    return client_ip(
        request.remote, request.headers.getall("X-Forwarded-For", []), edge.trusted_proxies
    )


_TOO_LARGE = TokenError(
    "invalid_request", f"the request body is larger than {MAX_FORM} bytes", status=413
)


async def _form(request: web.Request) -> list[tuple[str, str]] | None:
    """The text fields of a form POST; None when its body is larger than MAX_FORM (a
    declared Content-Length is refused before reading anything)."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        return None
    try:
        body = await request.read()  # at most the server's MAX_BODY, then 413
    except web.HTTPRequestEntityTooLarge:
        return None
    if len(body) > MAX_FORM:
        return None
    form = await request.post()  # parses the body read above
    return [(key, value) for key, value in form.items() if isinstance(value, str)]


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from `Authorization: Basic ...` (RFC 6749 2.3.1: both
    form-urlencoded); None without one; ValueError when it is malformed."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise ValueError("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _token_error(error: TokenError) -> web.Response:
    headers: dict[str, Any] = dict(_JSON_HEADERS)
    headers.update(_PUBLIC)
    if error.basic_challenge:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return web.Response(
        text=json.dumps({"error": error.error, "error_description": error.description}),
        status=error.status,
        content_type="application/json",
        headers=headers,
    )


def _unauthorized(challenge: str) -> web.Response:
    return web.json_response(
        {"error": "invalid_token"},
        status=401,
        headers={**_JSON_HEADERS, **_PUBLIC, "WWW-Authenticate": challenge},
    )
