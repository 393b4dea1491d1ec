"""Command line: `python -m bot [run]` starts the bot; `users`, `events` and `stats` are the
admin commands, `clients` and `oidc` manage the websites logging in through it; `demo` tries
the bot without credentials (see `python -m bot --help`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.config import ReportSettings, SettingError, Settings, describe_error

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Telegram phone-number login bot (Vonage Verify).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="migrate the database and start the bot (the default)")
    from bot.admin import cli

    cli.add_admin_commands(commands)
    demo = commands.add_parser(
        "demo",
        help="try the bot without credentials: a whole login in this terminal",
        description=DEMO_DESCRIPTION,
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--script",
        metavar="FILE",
        help="play the conversation in FILE ('-' for stdin; the default when stdin is not a "
        "terminal), print the transcript and exit",
    )
    demo.add_argument(
        "--database-url",
        metavar="URL",
        help="use this database (migrated first; the demo's users are written to it) instead "
        "of a throwaway SQLite file; DATABASE_URL is never used",
    )
    demo.add_argument(
        "--web",
        action="store_true",
        help="also log in to an example website through the bot (OpenID Connect): open the "
        "URL it prints in a browser",
    )
    demo.add_argument("--verbose", action="store_true", help="also show the bot's INFO log")
    return parser


DEMO_DESCRIPTION = """\
Run the real bot against built-in stand-ins for the Telegram Bot API and Vonage Verify v2,
both on 127.0.0.1, with a throwaway SQLite database (or the one given with --database-url).
No token or Vonage account is needed; settings in the environment or .env (credentials,
DATABASE_URL) are ignored, so nothing reaches Telegram, no SMS is sent and the bot's own
database is left alone. The terminal is your Telegram chat: the bot's
answers are printed with their buttons numbered, and the code the stand-in Verify "sends" is
printed as [SMS to ...]."""

DEMO_EPILOG = """\
in the chat:
  /login, a number, the code, /whoami, /logout, ...   go to the bot as messages
  1, 2, ...           press the button with that number
  /contact [NUMBER]   share your contact (the "Share my phone number" button)
  /admin, /admin off  become the admin user (try /users), or the normal user again
  /quit, Ctrl-D       end the demo

scripts: one message per line; empty lines and lines starting with # are skipped;
{code} is the last code sent, {wrong_code} a surely wrong one. After each line the demo
waits for the bot's answer; it exits with status 1 if the bot does not answer.

--web: the example website (examples/website.py) logs you in through the bot. Open the URL
it prints, click "Log in with Telegram": the login page's Telegram link is opened in this
chat for you (as tapping it on your phone would); log in, then press the button with the
number the page shows, and the website shows the verified number.

example:
  printf '/login\\n+44 7400 123123\\n{code}\\n/whoami\\n' | python -m bot demo --script -"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command in ("users", "events", "stats", "clients", "oidc"):
        return _admin(args)
    if args.command == "demo":
        from bot.demo import terminal as demo

        return demo.main(
            args.script, verbose=args.verbose, database_url=args.database_url, web=args.web
        )
    return _run()


def _config_error(error: ValidationError | SettingError) -> int:
    print(f"Configuration error: {describe_error(error)}", file=sys.stderr)
    return EXIT_CONFIG


def _admin(args: argparse.Namespace) -> int:
    from bot.admin import cli

    try:
        settings = ReportSettings()
        # SettingError also when a command needs NUMBER_HASH_KEY and it is not set.
        return cli.run_admin_command(args, settings)
    except (ValidationError, SettingError) as error:
        return _config_error(error)


def _run() -> int:
    try:
        settings = Settings()
    except (ValidationError, SettingError) as error:
        code = _config_error(error)
        print("To try the bot without any credentials: python -m bot demo", file=sys.stderr)
        return code

    from bot import logs
    from bot.db.migrate import upgrade_in_child
    from bot.telegram.lifecycle import serve

    secrets = settings.secrets()
    logs.configure(settings.log_level, secrets=secrets, form=settings.log_format)
    log = logging.getLogger("bot")
    try:
        log.info("Migrating the database to the latest revision")
        if not upgrade_in_child(
            settings.database_url,
            log_level=settings.log_level,
            log_format=settings.log_format,
            secrets=secrets,
        ):
            return 1
        asyncio.run(serve(settings))
    except SettingError as error:
        # A setting that only the database server could tell was wrong (DATABASE_POOL_SIZE).
        return _config_error(error)
    except Exception:
        # Through the logging handler, whose filter removes the token and secrets; Python's
        # own traceback printer would show them (PTB puts the token in InvalidToken).
        log.exception("The bot stopped on an unexpected error")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
