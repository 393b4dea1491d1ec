"""Command line: `python -m bot [run]` starts the bot; `users`, `events` and `stats` are the
admin commands (see `python -m bot --help`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.config import DatabaseSettings, SettingError, describe_error, load_settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Telegram phone-number login bot (Vonage Verify).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="migrate the database and start the bot (the default)")
    from bot import cli

    cli.add_admin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command in ("users", "events", "stats"):
        return _admin(args)
    return _run()


def _config_error(error: ValidationError | SettingError) -> int:
    print(f"Configuration error: {describe_error(error)}", file=sys.stderr)
    return EXIT_CONFIG


def _admin(args: argparse.Namespace) -> int:
    from bot import cli

    try:
        settings = DatabaseSettings()
    except (ValidationError, SettingError) as error:
        return _config_error(error)
    return cli.run_admin_command(args, settings)


def _run() -> int:
    try:
        settings = load_settings()
    except (ValidationError, SettingError) as error:
        code = _config_error(error)
        print("To try the bot without any credentials: python -m bot demo", file=sys.stderr)
        return code

    from bot import logs
    from bot.app import allowed_updates, build_application
    from bot.db.migrate import upgrade_sync

    secrets = [settings.telegram_bot_token.get_secret_value()]
    for secret in (settings.vonage_api_secret, settings.vonage_private_key):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    logs.configure(settings.log_level, secrets=secrets)
    log = logging.getLogger("bot")
    log.info("Migrating the database to the latest revision")
    upgrade_sync(settings.database_url)
    application = build_application(settings)
    log.info("Starting to poll for updates")
    application.run_polling(allowed_updates=allowed_updates())
    return 0


if __name__ == "__main__":
    sys.exit(main())
