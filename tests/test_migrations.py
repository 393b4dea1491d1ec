"""Alembic is the only source of the schema; it and the models must agree."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning

from bot.db.engine import make_engine
from bot.db.migrate import downgrade_sync, upgrade_sync
from bot.db.models import Base

ROOT = Path(__file__).resolve().parents[1]


async def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    engine = make_engine(url, pool_size=1)

    def inspect_sync(connection: Connection) -> tuple[list[object], set[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        with warnings.catch_warnings():
            # Reflection cannot read SQLite's expression index ix_auth_events_day_counts
            # (migration 0011), so nothing compares it: test_audit's EXPLAIN test proves it.
            warnings.filterwarnings(
                "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
            )
            diff = compare_metadata(context, Base.metadata)
        return list(diff), set(inspect(connection).get_table_names())

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_and_models_match(database_url: str) -> None:
    # The fixture already migrated to head.
    diff, tables = await _diff_and_tables(database_url)
    assert diff == []
    assert {"verified_users", "login_flows", "verification_starts", "admin_alerts"} <= tables

    await asyncio.to_thread(downgrade_sync, database_url, "base")
    _, tables = await _diff_and_tables(database_url)
    assert tables <= {"alembic_version"}

    await asyncio.to_thread(upgrade_sync, database_url, "head")
    diff, _ = await _diff_and_tables(database_url)
    assert diff == []


def test_alembic_command_line_reads_database_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _, tables = asyncio.run(_diff_and_tables(url))
    assert "verified_users" in tables


def test_two_processes_migrating_at_once_both_succeed(database_url: str) -> None:
    # The fixture migrated already: go back to an empty database first.
    downgrade_sync(database_url, "base")
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output.decode()
    diff, tables = asyncio.run(_diff_and_tables(database_url))
    assert diff == []
    assert "auth_events" in tables
