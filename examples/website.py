"""A website that logs its users in "with Telegram" through the bot, by OpenID Connect.

It knows nothing of the bot but its issuer URL and its client credentials: Authlib (a stock
OIDC client) reads the provider's discovery document, runs the authorization code flow with
PKCE (S256), and the ID token is checked against the provider's published keys before the
verified number is shown. Register it, then run it (aiohttp serves it):

    python -m bot clients add --name "Acme Shop" --redirect-uri http://127.0.0.1:8000/callback
    OIDC_ISSUER=https://login.example.com OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... \\
        python examples/website.py           # then open http://127.0.0.1:8000/

`python -m bot demo --web` runs it against the demo bot.
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from aiohttp import web
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

NAME = "Acme Shop"
STATE_COOKIE = "login-state"


def website(*, issuer: str, client_id: str, client_secret: str | None, url: str) -> web.Application:
    """The site at `url`: `/` offers the login, `/login` sends the browser to the provider,
    `/callback` (the registered redirect URI) comes back with the code and shows the number."""
    redirect_uri = url.rstrip("/") + "/callback"
    # state -> (PKCE verifier, nonce) of a login under way; a real site keeps it in its session
    pending: dict[str, tuple[str, str]] = {}

    def client() -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id,
            client_secret,
            scope="openid phone",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
        )

    async def discover(oauth: AsyncOAuth2Client) -> dict[str, Any]:
        found = await oauth.request(
            "GET", f"{issuer}/.well-known/openid-configuration", withhold_token=True
        )
        found.raise_for_status()
        metadata: dict[str, Any] = found.json()
        return metadata

    async def home(request: web.Request) -> web.Response:
        return page(NAME, '<p><a id="login" href="/login">Log in with Telegram</a></p>')

    async def login(request: web.Request) -> web.Response:
        verifier, nonce = generate_token(48), generate_token(20)
        async with client() as oauth:
            endpoint = (await discover(oauth))["authorization_endpoint"]
            location, state = oauth.create_authorization_url(
                endpoint, code_verifier=verifier, nonce=nonce
            )
        pending[state] = (verifier, nonce)
        response = web.Response(status=302, headers={"Location": location})
        # The state must come back to the browser that started the login (no login CSRF).
        response.set_cookie(STATE_COOKIE, state, httponly=True, samesite="Lax")
        return response

    async def callback(request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        started = pending.pop(state, None) if state == request.cookies.get(STATE_COOKIE) else None
        if started is None:
            return page("Not logged in", 'No login was started here. <a href="/">Start</a>', 400)
        if "error" in request.query:
            error = html.escape(request.query["error"])
            return page("Not logged in", f'The login was refused ({error}). <a href="/">Again</a>')
        verifier, nonce = started
        try:
            async with client() as oauth:
                metadata = await discover(oauth)
                tokens = await oauth.fetch_token(
                    metadata["token_endpoint"],
                    code=request.query.get("code", ""),
                    code_verifier=verifier,
                )
                keys = await oauth.request("GET", metadata["jwks_uri"], withhold_token=True)
            decoded = jwt.decode(
                tokens["id_token"], KeySet.import_key_set(keys.json()), algorithms=["RS256"]
            )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": client_id},
                },
                {"nonce": nonce, "client_id": client_id, "access_token": tokens["access_token"]},
            )
            claims.validate(leeway=60)
        except (OAuthError, JoseError, KeyError) as error:
            return page("Not logged in", f"The login failed ({html.escape(str(error))}).", 502)
        if claims.get("phone_number_verified") is not True:
            return page("Not logged in", "The provider did not verify a number.", 502)
        number = phonenumbers.format_number(
            phonenumbers.parse(claims["phone_number"]),
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        )
        return page("Welcome", f'<p id="who">logged in as {html.escape(number)}</p>')

    app = web.Application()
    app.add_routes([web.get("/", home), web.get("/login", login), web.get("/callback", callback)])
    return app


def page(title: str, body: str, status: int = 200) -> web.Response:
    """A minimal HTML page."""
    document = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}</html>"
    )
    return web.Response(text=document, status=status, content_type="text/html")


if __name__ == "__main__":
    site = os.environ.get("SITE_URL", "http://127.0.0.1:8000")
    web.run_app(
        website(
            issuer=os.environ["OIDC_ISSUER"],
            client_id=os.environ["OIDC_CLIENT_ID"],
            client_secret=os.environ.get("OIDC_CLIENT_SECRET") or None,
            url=site,
        ),
        host=urlsplit(site).hostname,
        port=urlsplit(site).port or 8000,
    )
