"""`python -m bot stats --html FILE`, opened as an operator opens it: from disk, in a real
headless browser with the network off."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from bot import texts
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import HASH_KEY, Chat, Clock, login, numbers_at_once, run_cli


def stats_cli(*args: str, database_url: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot stats ARGS` on the test database, with the bot's NUMBER_HASH_KEY and
    any other settings given."""
    env = {"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY, **settings}
    return run_cli("stats", *args, env=env)


async def open_offline(browser: Browser, report: Path) -> tuple[Page, list[str]]:
    """The report opened from its file with the network off; also every URL the page asked
    for."""
    context = await browser.new_context(offline=True)
    page = await context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    await page.goto(report.as_uri())
    return page, asked


async def cells(page: Page, table: str) -> list[list[str]]:
    """The text of each body row of a table, cell by cell."""
    rows = page.locator(f"table#{table} tbody tr")
    return [
        [cell.strip() for cell in await rows.nth(i).locator("td").all_inner_texts()]
        for i in range(await rows.count())
    ]


async def test_the_report_shows_per_day_bars_conversion_and_a_flagged_region(
    start_bot: Callable[..., Any],
    tg: FakeTelegram,
    verify: FakeVerify,
    clock: Clock,
    database_url: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    await start_bot(denied_country_codes="49")
    yesterday, today = clock.now - timedelta(days=1), clock.now
    clock.now = yesterday
    await login(Chat(tg, 1001), verify)
    clock.now = today
    await login(Chat(tg, 1002), verify, "+44 7400 123456")
    # Ten codes to Nigeria that nobody ever types in: the pattern of SMS pumping.
    pumped = [Chat(tg, 2000 + i) for i in range(10)]
    for chat in pumped:
        await chat.send("/login")
    await numbers_at_once(pumped, [f"+234 803 123 45{i:02d}" for i in range(10)])
    # One number in a denied country, and one start Vonage fails.
    refused, failed = Chat(tg, 3001), Chat(tg, 3002)
    await refused.send("/login")
    assert await refused.say("+49 151 23456789") == texts.REFUSED_COUNTRY
    await failed.send("/login")
    verify.fail_next(500, path_kind="start")
    assert await failed.say("+33 6 12 34 56 78") == texts.UNAVAILABLE
    await failed.quiet()

    report = tmp_path / "report.html"
    result = stats_cli(
        "--days", "3", "--html", str(report), database_url=database_url, PRICE_PER_SMS="0.05"
    )
    assert result.returncode == 0, result.stderr
    page, asked = await open_offline(browser, report)

    assert asked == [report.as_uri()]  # the page needed nothing else
    chart = page.locator("svg#per-day")
    assert await chart.is_visible()
    days = [(today - timedelta(days=n)).strftime("%Y-%m-%d") for n in (2, 1, 0)]
    for kind, values in (("starts", ["0", "1", "11"]), ("verified", ["0", "1", "1"])):
        bars = chart.locator(f"rect.{kind}")
        assert [await bars.nth(i).get_attribute("data-day") for i in range(3)] == days
        assert [await bars.nth(i).get_attribute("data-value") for i in range(3)] == values
    points = chart.locator("circle.conversion")
    assert [await points.nth(i).get_attribute("data-day") for i in range(2)] == days[1:]
    assert await points.count() == 2
    assert await chart.locator("rect.starts").nth(2).bounding_box() is not None

    assert await cells(page, "regions") == [
        ["NG (+234)", "10", "0", "0%", "0.5000", "Possible SMS pumping"],
        ["GB (+44)", "2", "2", "100%", "0.1000", ""],
    ]
    assert await page.locator("table#regions th").all_inner_texts() == [
        "Region",
        "Started",
        "Verified",
        "Conversion",
        "Spend (USD)",
        "Flag",
    ]
    assert await page.locator("table#regions tr.pumping").count() == 1
    assert await cells(page, "failures") == [["unavailable", "1"]]
    assert await cells(page, "limits") == [["country", "1"]]


async def test_a_report_of_a_quiet_period_has_empty_bars_and_says_so(
    database_url: str, browser: Browser, tmp_path: Path
) -> None:
    report = tmp_path / "quiet.html"
    result = stats_cli("--days", "7", "--html", str(report), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Wrote the report to {report}"
    page, _ = await open_offline(browser, report)

    bars = page.locator("svg#per-day rect.starts")
    assert await bars.count() == 7
    assert {await bars.nth(i).get_attribute("data-value") for i in range(7)} == {"0"}
    assert await page.locator("svg#per-day circle").count() == 0
    assert await cells(page, "regions") == [["Nothing in this period."]]
    # Without prices the report makes no guess at the spend.
    assert "Spend" not in await page.locator("table#regions").inner_text()


def test_a_report_that_cannot_be_written_is_an_error_without_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "report.html"
    result = stats_cli("--html", str(target), database_url=database_url)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot write {target}")
    assert "Traceback" not in result.stderr
