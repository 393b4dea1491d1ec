"""Make docs/report.png, the README's picture of `python -m bot stats --html`.

A throwaway SQLite database gets two weeks of made-up logins (one country pumped, with the
low conversion that flags it), `python -m bot stats --days 14 --html` reports on it, and
headless Chromium (tests/browser.py) takes the screenshot. Run from the repository root:
`.venv/bin/python scripts/report_screenshot.py [OUT.png]`.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.__main__ import main as bot_main  # noqa: E402 - after the path is set
from bot.clock import utcnow  # noqa: E402
from bot.db import repo  # noqa: E402
from bot.db.engine import make_engine, make_sessionmaker  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.login.audit import Audit, Event  # noqa: E402
from bot.login.phone import PhoneNumber  # noqa: E402
from tests import browser  # noqa: E402

DAYS = 14
HASH_KEY = "report-screenshot-demo-key-0123456789abcdef"
# (region, calling code) -> (starts per day, share verified); Nigeria is pumped in the last days
REGIONS = {("GB", 44): (9, 0.82), ("DE", 49): (5, 0.76), ("FR", 33): (3, 0.7), ("US", 1): (2, 0.8)}
PUMPED, PUMPING_FROM = ("NG", 234), 9
SMS_PRICE = "0.0625"  # a made-up price, for the spend column


async def fill(database_url: str, *, now: datetime) -> None:
    """Two weeks of starts, logins, failures and refusals, as the bot records them."""
    moment = [now]
    audit = Audit(hash_key=HASH_KEY.encode(), clock=lambda: moment[0])
    chance = random.Random(16)  # noqa: S311 - made-up figures, the same every run
    rows: list[dict[str, object]] = []

    def add(event: Event, place: tuple[str, int], detail: str | None = None) -> None:
        region, code = place
        number = PhoneNumber(f"+{code}{chance.randrange(10**9, 10**10)}", code, region)
        rows.append(audit.row(event, chat_id=1, number=number, detail=detail))

    for day in range(DAYS):
        base = now - timedelta(days=DAYS - 1 - day)
        plan = dict(REGIONS)
        if day >= PUMPING_FROM:
            plan[PUMPED] = (6 * (day - PUMPING_FROM + 1), 0.03)
        for place, (per_day, verified) in plan.items():
            for _ in range(max(per_day + chance.randint(-2, 2), 0)):
                moment[0] = base - timedelta(minutes=chance.randrange(0, 600))
                add(Event.CODE_SENT, place)
                if chance.random() < verified:
                    add(Event.VERIFIED, place)
        moment[0] = base
        for detail in chance.sample(["unavailable", "invalid_number", "number_busy"], 1):
            add(Event.FAILED, ("GB", 44), detail)
        if chance.random() < 0.5:
            add(Event.LIMITED, ("GB", 44), chance.choice(["cooldown", "hour", "country"]))
    engine = make_engine(database_url, pool_size=1)
    async with make_sessionmaker(engine).begin() as session:
        await repo.add_events(session, rows=rows)
    await engine.dispose()


async def screenshot(report: Path, out: Path) -> None:
    """The report as a browser shows it, the whole page."""
    async with browser.chromium() as chromium:
        context = await chromium.new_context(
            offline=True, viewport={"width": 860, "height": 900}, device_scale_factor=1
        )
        page = await context.new_page()
        await page.goto(report.as_uri())
        await page.screenshot(path=str(out), full_page=True)


def run(out: Path) -> int:
    """Make the screenshot at `out`; the exit status."""
    with tempfile.TemporaryDirectory() as work:
        database_url = f"sqlite+aiosqlite:///{work}/demo.db"
        asyncio.run(upgrade(database_url))
        asyncio.run(fill(database_url, now=utcnow().replace(hour=22)))
        os.environ.update(
            DATABASE_URL=database_url, NUMBER_HASH_KEY=HASH_KEY, PRICE_PER_SMS=SMS_PRICE
        )
        report = Path(work) / "report.html"
        status = bot_main(["stats", "--days", str(DAYS), "--html", str(report)])
        if status:
            return status
        out.parent.mkdir(parents=True, exist_ok=True)
        asyncio.run(screenshot(report, out))
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "report.png"))
