"""Bring a database to the latest Alembic revision from inside the program."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for this project, pointed at one database."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["skip_logging_config"] = True
    return cfg


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    """Upgrade (blocking); Alembic's env.py runs its own event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str = "base") -> None:
    """Downgrade (blocking)."""
    command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade from async code: in a worker thread, since env.py runs asyncio.run."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)
