"""Bring a database to the latest Alembic revision from inside the program."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]

logger = logging.getLogger(__name__)


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for this project, pointed at one database."""
    # Imported here, not above: the bot migrates in a child process (upgrade_in_child) and
    # must not load Alembic itself.
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["skip_logging_config"] = True
    return cfg


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    """Upgrade (blocking); Alembic's env.py runs its own event loop."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str = "base") -> None:
    """Downgrade (blocking)."""
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade from async code: in a worker thread, since env.py runs asyncio.run."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)


def upgrade_in_child(
    database_url: str, *, log_level: str, secrets: Sequence[str], log_format: str = "text"
) -> bool:
    """Upgrade to head in a child process, logging as the bot does; False if it failed (the
    log says why). Alembic and the migrations, once loaded, would stay in the bot's memory
    for its whole life (14 MB, a tenth of it); a child's memory goes back when it exits."""
    child = multiprocessing.get_context("spawn").Process(
        target=_upgrade_child,
        args=(database_url, log_level, tuple(secrets), log_format),
        name="migrate",
    )
    child.start()
    child.join()
    return child.exitcode == 0


def _upgrade_child(
    database_url: str, log_level: str, secrets: tuple[str, ...], log_format: str
) -> None:
    """The child's whole work: log through the bot's secret filter, upgrade, exit 0 or 1."""
    from bot import logs

    logs.configure(log_level, secrets=secrets, form=log_format)
    try:
        upgrade_sync(database_url)
    except Exception:
        # Through the filter: a driver's error may quote the URL with its password.
        logger.exception("The database migration failed")
        sys.exit(1)
