"""`python -m bot demo`: the real bot against the built-in stand-ins, driven by a script."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot.demo.terminal
from bot.__main__ import main
from bot.db.models import LoginFlow, VerifiedUser
from bot.demo.sandbox import FakeTelegram
from bot.demo.terminal import USER, run_demo
from tests.helpers import read_page

NUMBER = "+44 7400 123123"
TELEGRAM_CODE = re.compile(r"\[Telegram code to \+44 7400 123123\] (\d{6})")
SMS = re.compile(r"\[SMS to \+1 201-555-0100\] Your AcmeLogin code is (\d{6}) \(in en-us\)")

LOGIN_WRONG_CODE_LOGOUT = """\
# a whole login with one wrong code, then out again
/login
+44 7400 123123
{wrong_code}

{code}
/whoami
/logout
"""


async def play(script: str, database_url: str | None = None) -> tuple[int, list[str], str]:
    """Run the demo in this process; returns its status, transcript lines and error output."""
    out, err = io.StringIO(), io.StringIO()
    status = await run_demo(io.StringIO(script), out, database_url=database_url, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


def assert_in_order(lines: list[str], *expected: str) -> None:
    """Each expected line occurs, after the one before it."""
    position = -1
    for line in expected:
        assert line in lines[position + 1 :], f"{line!r} missing after line {position}: {lines}"
        position = lines.index(line, position + 1)


async def test_lang_tries_a_telegram_language_in_the_demo() -> None:
    status, lines, err = await play("/lang es\n/login\n+1 201 555 0100\n{code}\n/lang\n/cancel\n")
    assert status == 0, err
    assert_in_order(
        lines,
        "-- your Telegram language is now es: the bot speaks Español, unless you chose another "
        "with /language",
        "you: /login",
        "bot: Envíame tu número de teléfono con el prefijo del país, como +34 612 34 56 78, o "
        "toca el botón de abajo para compartir el número de esta cuenta de Telegram.",
        "  [1] Compartir mi número de teléfono",
        "bot: Has iniciado sesión como +1 201-555-0100.",
        "-- your Telegram language is now not set: the bot speaks English, unless you chose "
        "another with /language",
        "bot: There is no login in progress.",
    )
    # A US number speaking Spanish: the SMS is in US Spanish.
    assert any(
        re.fullmatch(r"\[SMS to \+1 201-555-0100\] Your AcmeLogin code is \d{6} \(in es-us\)", line)
        for line in lines
    ), lines


async def test_scripted_login_with_a_wrong_code_and_logout(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    status, lines, err = await play(LOGIN_WRONG_CODE_LOGOUT, database_url)

    assert status == 0, err
    assert err == ""
    sent = [match for line in lines if (match := TELEGRAM_CODE.fullmatch(line))]
    assert len(sent) == 1, lines
    code = sent[0].group(1)
    wrong = "".join(str((int(d) + 1) % 10) for d in code)
    assert_in_order(
        lines,
        "you: /login",
        "bot: Send me your phone number with its country code, such as +44 7400 123123, "
        "or tap the button below to share the number of this Telegram account.",
        "  [1] Share my phone number",
        f"you: {NUMBER}",
        sent[0].group(0),
        "  [1] Send a new code  [2] Send by SMS instead",
        f"you: {wrong}",
        "bot: That code is not right. 2 tries left.",
        f"you: {code}",
        f"bot: You are logged in as {NUMBER}.",
        "you: /whoami",
        "you: /logout",
        f"bot: You are logged out. {NUMBER} is no longer linked to this chat.",
    )
    # Comments and empty lines are not sent; every line gets its answer before the next.
    assert [line for line in lines if line.startswith("you: ")] == [
        "you: /login",
        f"you: {NUMBER}",
        f"you: {wrong}",
        f"you: {code}",
        "you: /whoami",
        "you: /logout",
    ]
    whoami = lines[lines.index("you: /whoami") + 1]
    assert re.fullmatch(
        rf"bot: You are logged in as \{NUMBER} \(since [\d:-]+ UTC, "
        r"proven by a code in Telegram\)\.",
        whoami,
    )

    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(VerifiedUser)) == 0
        assert await session.scalar(select(func.count()).select_from(LoginFlow)) == 0


async def test_a_number_without_telegram_gets_the_sms_in_the_demo() -> None:
    status, lines, err = await play("/login\n+1 201 555 0100\n{code}\n/whoami\n")
    assert status == 0, err
    sms = [match for line in lines if (match := SMS.fullmatch(line))]
    assert len(sms) == 1, lines
    assert not any(line.startswith("[Telegram code") for line in lines), lines
    assert_in_order(
        lines,
        sms[0].group(0),
        "  [1] Send a new code  [2] Call me instead",
        "bot: You are logged in as +1 201-555-0100.",
    )
    assert "proven by an SMS code" in lines[lines.index("you: /whoami") + 1]


async def test_share_contact_button_logs_in_and_the_database_keeps_it(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    status, lines, err = await play("/login\n1\n{code}\n", database_url)

    assert status == 0, err
    assert_in_order(
        lines,
        "you: 1",
        f"-- you share your contact: {NUMBER}",
        f"bot: You are logged in as {NUMBER}.",
    )
    async with db() as session:
        users = (await session.scalars(select(VerifiedUser))).all()
    assert [(u.chat_id, u.user_id, u.phone_number) for u in users] == [
        (USER.user_id, USER.user_id, "+447400123123")
    ]


async def test_the_demo_ignores_real_credentials_and_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    junk = {
        "TELEGRAM_BOT_TOKEN": "123:real-looking-token",
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
        "VONAGE_API_KEY": "real-key",
        "VONAGE_API_SECRET": "real-secret",
        "VONAGE_APPLICATION_ID": "real-application",
        "VONAGE_PRIVATE_KEY": str(tmp_path / "no-such-key.pem"),
        "VONAGE_API_HOST": "127.0.0.1:9",
        "VONAGE_BRAND": "Leaked",
        "ALLOWED_COUNTRY_CODES": "49",
        "LIMIT_STARTS_PER_HOUR": "not a number",
        "DATABASE_URL": "mysql://nowhere/db",
        "REQUESTS_CA_BUNDLE": str(tmp_path / "no-such-ca.pem"),
        # A proxy would swallow the calls to 127.0.0.1; the demo must go direct.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
    }
    for name, value in junk.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=456:from-dotenv\nVONAGE_BRAND=DotEnv\n")
    monkeypatch.chdir(tmp_path)

    status, lines, err = await play("/login\n+44 7400 123123\n{code}\n")

    assert status == 0, err
    assert any(TELEGRAM_CODE.fullmatch(line) for line in lines), lines
    assert f"bot: You are logged in as {NUMBER}." in lines
    # What the demo changed while it ran is back as it was.
    assert {name: os.environ.get(name) for name in junk} == junk


async def test_exits_non_zero_when_the_bot_stops_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class SilencedTelegram(FakeTelegram):
        """Telegram refuses every message the bot sends to the demo user."""

        async def start(self) -> None:
            await super().start()
            self.block_user(USER.user_id)

    monkeypatch.setattr(bot.demo.terminal, "FakeTelegram", SilencedTelegram)
    out, err = io.StringIO(), io.StringIO()

    status = await run_demo(io.StringIO("/login\n/whoami\n"), out, err=err, reply_timeout=1.5)

    assert status == 1
    assert out.getvalue() == "you: /login\n"
    assert err.getvalue() == "error: the bot did not answer '/login' within 1.5 s\n"


async def test_a_code_placeholder_before_any_code_is_an_error() -> None:
    status, lines, err = await play("/help\n{code}\n/whoami\n")

    assert status == 1
    assert lines[0] == "you: /help"
    assert not any(line.startswith("you: /whoami") for line in lines)
    assert err == "error: '{code}': no code was sent yet\n"


def test_demo_help_documents_the_script_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--script FILE", "{code}", "/contact", "/admin", "--database-url URL", "--web"):
        assert needle in text


@pytest.mark.parametrize("args", [["--script", "-"], []], ids=["script-stdin", "piped-stdin"])
def test_python_m_bot_demo_plays_a_script_from_stdin(tmp_path: Path, args: list[str]) -> None:
    """As a newcomer runs it: no credentials, no .env, only PATH in the environment."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", "demo", *args],
        input="/login\n+44 7400 123123\n000000\n{code}\n/whoami\n/logout\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quiet: no log lines by default
    lines = result.stdout.splitlines()
    assert lines[0] == "you: /login"
    assert f"bot: You are logged in as {NUMBER}." in lines
    assert lines[-1] == f"bot: You are logged out. {NUMBER} is no longer linked to this chat."
    assert list(tmp_path.iterdir()) == []  # the throwaway database lived elsewhere


def test_the_demo_never_touches_database_url_only_the_database_it_is_given(
    tmp_path: Path,
) -> None:
    """On a production host DATABASE_URL is the real database: the demo must not migrate it
    or write its users into it. Only --database-url gives the demo a database."""
    production = tmp_path / "production.db"
    given = tmp_path / "given.db"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite+aiosqlite:///{production}",
    }
    script = "/login\n+44 7400 123123\n{code}\n"
    for args in ([], ["--database-url", f"sqlite+aiosqlite:///{given}"]):
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bot", "demo", "--script", "-", *args],
            input=script,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"bot: You are logged in as {NUMBER}." in result.stdout.splitlines()
    assert not production.exists()
    with sqlite3.connect(given) as conn:
        assert conn.execute("SELECT phone_number FROM verified_users").fetchall() == [
            ("+447400123123",)
        ]


SHOWN_WITHIN = 15.0


async def shown(out: io.StringIO, pattern: str) -> re.Match[str]:
    """Wait until the transcript has a line matching `pattern` (the whole line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHOWN_WITHIN
    while loop.time() < deadline:
        for line in out.getvalue().splitlines():
            if match := re.fullmatch(pattern, line):
                return match
        await asyncio.sleep(0.05)
    pytest.fail(f"no line {pattern!r} within {SHOWN_WITHIN:g} s in:\n{out.getvalue()}")


async def test_demo_web_logs_the_browser_in_to_the_example_website(database_url: str) -> None:
    """`python -m bot demo --web`: the person opens the printed website, clicks "Log in with
    Telegram", the terminal chat gets the page's /start link, and after the login and the
    page's number the browser lands on the website showing the verified number."""
    reader, writer = os.pipe()
    with os.fdopen(reader, encoding="utf-8") as script, os.fdopen(writer, "w") as typing:
        out, err = io.StringIO(), io.StringIO()
        demo = asyncio.create_task(
            run_demo(script, out, database_url=database_url, err=err, web=True)
        )
        site = (await shown(out, r"-- the example website: (http://127\.0\.0\.1:\d+/)"))[1]
        jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1, as a browser keeps them
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(site) as home:
                assert '<a id="login" href="/login">Log in with Telegram</a>' in await home.text()
            # The click: the website sends the browser to the bot's login page.
            async with browser.get(site + "login") as response:
                assert response.status == 200
                page = read_page(str(response.url), await response.text())
            assert "Acme Shop" in page.html
            await shown(out, re.escape(f"you: /start {page.token}"))
            await shown(
                out,
                re.escape(
                    "bot: Acme Shop asks to log you in with your phone number. "
                    "First, prove it is yours."
                ),
            )
            # The page looking for the answer shows the same link: it is not opened again.
            async with browser.get(page.wait_url) as response:
                assert read_page(page.wait_url, await response.text()).token == page.token

            typing.write("+44 7400 123123\n{code}\n")
            typing.flush()
            await shown(
                out,
                re.escape(
                    "bot: Acme Shop (127.0.0.1) asks to log you in as +44 7400 123123. "
                    "Tap the number shown on that page:"
                ),
            )
            buttons = await shown(out, r"  \[1\] (\d\d)  \[2\] (\d\d)  \[3\] (\d\d)")
            assert str(page.number) in buttons.groups()
            typing.write(f"{buttons.groups().index(str(page.number)) + 1}\n")
            typing.flush()
            await shown(
                out, re.escape("bot (edited): Done: you are logged in to Acme Shop.") + ".*"
            )

            # The page's meta refresh (or its script) goes on, and ends on the website.
            async with browser.get(page.wait_url) as response:
                assert response.status == 200
                assert response.url.path == "/callback"
                assert str(response.url).startswith(site)
                assert '<p id="who">logged in as +44 7400 123123</p>' in await response.text()
        typing.close()
        assert await asyncio.wait_for(demo, 30) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("you: /start ") for line in lines) == 1, lines
    assert err.getvalue() == ""
