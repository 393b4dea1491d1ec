"""No request to the bot's HTTP server raises: a database that fails under the web login
is answered 503 in the route's own format (a page for the browser's routes, OAuth 2.0's
`temporarily_unavailable` for the JSON ones), counted in the database-errors metric and
logged once without a traceback; any other failure is answered 500 and logged once with it.
aiohttp's own answers (404, 405) are left as they are."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from bot import texts
from bot.db.engine import make_engine
from tests.helpers import Browser, Provider, Scrape, authorize_url, exchange, scrape

DATABASE_ERRORS = "phone_login_database_errors_total"
CODE = "a-code-nobody-may-log-1234"


async def run_sql(database_url: str, statement: str) -> None:
    """Change the test database behind the running bot's back."""
    engine = make_engine(database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


Breaker = Callable[[str], Awaitable[Scrape]]


@pytest.fixture
def break_database(
    provider: Provider, database_url: str, caplog: pytest.LogCaptureFixture
) -> Breaker:
    """Run a statement on the running provider's database, then watch the warnings; the
    metrics as they were before."""

    async def apply(statement: str) -> Scrape:
        before = await scrape(f"{provider.issuer}/metrics")
        await run_sql(database_url, statement)
        caplog.set_level(logging.WARNING)
        return before

    return apply


async def test_a_failing_database_is_answered_503_in_each_routes_format_and_counted(
    provider: Provider, person: Browser, break_database: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    before = await break_database("ALTER TABLE oidc_requests RENAME TO oidc_requests_gone")

    status, page, _ = await person.get(authorize_url(provider, provider.shop.client_id))
    assert status == 503
    assert texts.PAGE_UNAVAILABLE_TITLE in page
    assert "<html" in page.lower()

    assert await exchange(provider, CODE) == (503, {"error": "temporarily_unavailable"})
    async with person.http.get(f"{provider.issuer}/authorize/{CODE}/status") as response:
        assert response.status == 503
        assert await response.json() == {"error": "temporarily_unavailable"}
    # aiohttp's own answers pass through as they were.
    async with person.http.get(f"{provider.issuer}/nowhere") as response:
        assert (response.status, await response.text()) == (404, "404: Not Found")

    moved = await scrape(f"{provider.issuer}/metrics") - before
    assert moved.total(DATABASE_ERRORS) == 3
    failures = [r for r in caplog.records if "with 503" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)
    assert not [r for r in caplog.records if r.exc_info]
    assert CODE not in caplog.text


async def test_an_unexpected_error_is_answered_500_and_logged_once_with_its_traceback(
    provider: Provider, person: Browser, break_database: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    # A signing key that is not a key: the database answers, the data cannot be used.
    before = await break_database("UPDATE oidc_keys SET private_pem = 'not a key'")

    async with person.http.get(f"{provider.issuer}/jwks") as response:
        assert response.status == 500
        assert await response.json() == {"error": "server_error"}

    failures = [r for r in caplog.records if "with 500" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None
    assert len([r for r in caplog.records if r.exc_info]) == 1
    assert (await scrape(f"{provider.issuer}/metrics") - before).total(DATABASE_ERRORS) == 0
