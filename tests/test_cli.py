"""The admin command line, run as operators run it: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.sandbox import FakeVerify
from tests.helpers import HASH_KEY, Chat, login, run_cli


async def test_users_list_json_has_the_scripted_keys(
    chat: Chat, verify: FakeVerify, database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    result = run_cli("users", "list", "--json", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["chat_id"] == chat.id
    assert row["user_id"] == chat.id
    assert row["phone_number"] == "+447400123123"
    assert datetime.fromisoformat(row["verified_at"]).tzinfo is not None


async def test_users_list_table_lists_only_current_logins(
    chat: Chat, verify: FakeVerify, database_url: str
) -> None:
    await login(chat, verify)
    table = run_cli("users", "list", env={"DATABASE_URL": database_url})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "PHONE",
        "NUMBER",
        "CHAT",
        "ID",
        "USER",
        "ID",
        "NAME",
        "VERIFIED",
        "AT",
        "(UTC)",
    ]
    assert lines[1].split()[:3] == ["+447400123123", str(chat.id), str(chat.id)]
    assert lines[-1] == "(1 logged in)"

    await chat.say("/logout")
    after = run_cli("users", "list", "--json", env={"DATABASE_URL": database_url})
    assert json.loads(after.stdout) == []


def test_users_list_needs_only_the_database_url(tmp_path: object) -> None:
    result = run_cli(
        "users", "list", "--json", env={"DATABASE_URL": "sqlite+aiosqlite:////nonexistent/dir/x.db"}
    )
    assert result.returncode == 1
    assert "cannot read the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_stop_the_bot_with_one_line_and_status_2() -> None:
    cases = {
        "TELEGRAM_BOT_TOKEN is missing": {},
        "VONAGE_API_KEY is missing": {"TELEGRAM_BOT_TOKEN": "1:x"},
        "VONAGE_BRAND is invalid": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "s",
            "VONAGE_BRAND": "A brand far too long",
        },
        "BOT_ADMIN_IDS is invalid": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "s",
            "BOT_ADMIN_IDS": "12,bob",
        },
        "DATABASE_URL is invalid": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "s",
            "DATABASE_URL": "mysql://x",
        },
        "VONAGE_PRIVATE_KEY is needed": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_APPLICATION_ID": "app",
        },
        "VERIFY_CODE_LENGTH is invalid": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "supersecret",
            "VERIFY_CODE_LENGTH": "4",
            "NUMBER_HASH_KEY": HASH_KEY,
        },
        "NUMBER_HASH_KEY is missing": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "supersecret",
        },
        "NUMBER_HASH_KEY is invalid: too short (11 bytes)": {
            "TELEGRAM_BOT_TOKEN": "1:x",
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "supersecret",
            "NUMBER_HASH_KEY": "short-value",
        },
    }
    for expected, env in cases.items():
        result = run_cli(env=env)
        assert result.returncode == 2, (expected, result.stderr)
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"Configuration error: {expected}"), (expected, first)
        assert "Traceback" not in result.stderr
        assert "supersecret" not in result.stderr


async def test_commands_that_hash_numbers_refuse_to_run_without_the_bots_key(
    chat: Chat, verify: FakeVerify, database_url: str
) -> None:
    await login(chat, verify)
    for key in ({}, {"NUMBER_HASH_KEY": "too-short"}):
        env = {"DATABASE_URL": database_url, **key}
        result = run_cli("users", "show", "+447400123123", env=env)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""  # nothing about the number is shown
        (line,) = result.stderr.splitlines()
        assert line.startswith("Configuration error: NUMBER_HASH_KEY is "), line
        assert "secrets.token_hex(32)" in line

    shown = run_cli(
        "users",
        "show",
        "+447400123123",
        env={"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY},
    )
    assert shown.returncode == 0, shown.stderr
