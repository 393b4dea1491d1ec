"""`python -m bot demo`: try the whole login without any credentials, in a terminal.

The real bot (the same `Application`, handlers, database code and Vonage SDK as in production)
runs against the wire-level stand-ins of `bot.demo.sandbox`: a Telegram Bot API, the Telegram
Gateway API and a Vonage Verify v2 API, all listening on 127.0.0.1 only. Codes go by Telegram
first (`VERIFY_WORKFLOW=telegram,sms,voice`); the stand-in Gateway cannot deliver to +1
numbers, so those get the SMS. The terminal is the Telegram chat:

* what you type is sent to the bot as a message from a simulated user;
* the bot's answers are printed as `bot: ...`, with their buttons as numbered lines
  (`  [1] Send a new code  [2] Call me instead`); type a button's number to press it;
* the stand-ins print the code they would have sent (`[Telegram code to +44 7400 123123]
  123456`, `[SMS to +1 201-555-0100] ...`).

Demo-only commands (never sent to the bot): `/contact [NUMBER]` shares your contact, as the
"Share my phone number" button does; `/admin` makes you the admin user, `/admin off` the
normal user again; `/quit` ends the demo.

With a script (a file, or stdin when it is not a terminal) each line is one message; lines
that are empty or start with `#` are skipped; `{code}` stands for the last code the stand-in
Verify sent and `{wrong_code}` for a code of the same length that is surely wrong. After each
line the demo waits until the bot has answered and gone quiet; if it does not answer, the demo
stops with exit status 1.

`--web` also starts the bot's HTTP server with the web login (OpenID Connect) on, and an
example website (`examples/website.py`) that logs its users in through it: open the printed
URL in a browser and click "Log in with Telegram"; the login page's Telegram link is opened
in the terminal chat for you (see `bot.demo.web`).

Settings come only from here: the environment and `.env` are not read (credentials there are
ignored, and so is `DATABASE_URL`: on a production host it names the real database, which the
demo must not migrate or fill with its users). `--database-url` gives the demo a database to
use instead of a throwaway SQLite file; the hash key is a new random one on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot import i18n
from bot.config import SettingError, Settings, describe_error
from bot.db.migrate import upgrade
from bot.demo.sandbox import (
    CallbackAnswer,
    Delivery,
    FakeGateway,
    FakeTelegram,
    FakeVerify,
    GatewayMessage,
    SentMessage,
)
from bot.demo.sandbox._server import LOCALHOST
from bot.demo.web import WebDemo, prepared
from bot.login import phone
from bot.telegram.lifecycle import running
from bot.telegram.polling import polling

# Fake credentials: only the stand-ins know them.
DEMO_TOKEN = "700000:DEMO-not-a-real-telegram-token"  # noqa: S105
DEMO_VONAGE_KEY = "demo-key"
DEMO_VONAGE_SECRET = "demo-secret-not-real"  # noqa: S105
DEMO_BRAND = "AcmeLogin"
DEMO_BOT_USERNAME = "AcmeLoginDemoBot"
# Seconds before "Send a new code" works and before the same chat or number may ask for
# another code. The product default (60) is there to slow down abuse; a person trying the
# demo should be able to try the buttons, or log in again, without waiting a minute.
DEMO_COOLDOWN_SECONDS = 10
DEMO_GATEWAY_TOKEN = "demo-gateway-token-not-real"  # noqa: S105
# Numbers the stand-in Gateway cannot deliver to (no Telegram account there): they get the SMS.
DEMO_NO_TELEGRAM = ("+1",)
# Three channels (Telegram, SMS, a call) within the 600 s a code lives.
DEMO_CHANNEL_TIMEOUT = 200

#: how long to wait for the bot's first answer to a line (and then for it to go quiet)
REPLY_TIMEOUT = 10.0
#: how long the bot must have made no Telegram call to count as done answering
QUIET_SECONDS = 0.25

CODE = "{code}"
WRONG_CODE = "{wrong_code}"

EXIT_OK = 0
EXIT_NO_ANSWER = 1
EXIT_CONFIG = 2

_BUTTON_NUMBER = re.compile(r"[1-9][0-9]?")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass(frozen=True, slots=True)
class Persona:
    """A simulated Telegram user of the demo (their private chat id is their user id)."""

    user_id: int
    first_name: str
    username: str
    #: what the "Share my phone number" button shares (Telegram sends it without `+`)
    phone_number: str
    admin: bool = False

    def describe(self) -> str:
        role = "an admin" if self.admin else "a normal user"
        return f"{self.first_name}, {role} (Telegram user {self.user_id})"


USER = Persona(1001, "Ada", "ada", "447400123123")
ADMIN = Persona(9001, "Grace", "grace_admin", "447400456456", admin=True)


class DemoSettings(Settings):
    """`Settings` that read nothing but the values passed in: no environment, no `.env`,
    so neither real credentials nor an operator's limits can leak into the demo."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_settings(
    telegram: FakeTelegram,
    verify: FakeVerify,
    gateway: FakeGateway,
    database_url: str,
    web: WebDemo | None = None,
) -> Settings:
    """The bot's settings for the demo: the stand-ins (and with `web`, the web login on
    loopback), the product's defaults otherwise."""
    web_login: dict[str, Any] = {}
    if web is not None:
        web_login = {
            "oidc_issuer": web.issuer,
            "webhook_listen": LOCALHOST,
            "webhook_port": web.bot_port,
        }
    return DemoSettings(
        telegram_bot_token=telegram.token,
        telegram_base_url=telegram.base_url,
        vonage_api_key=verify.api_key,
        vonage_api_secret=verify.api_secret,
        vonage_application_id=None,
        vonage_private_key=None,
        vonage_api_host=verify.host,
        vonage_brand=DEMO_BRAND,
        database_url=database_url,
        number_hash_key=secrets.token_hex(32),
        bot_admin_ids=[ADMIN.user_id],
        limit_cooldown_seconds=DEMO_COOLDOWN_SECONDS,
        verify_workflow=["telegram", "sms", "voice"],
        verify_channel_timeout=DEMO_CHANNEL_TIMEOUT,
        telegram_gateway_token=gateway.token,
        telegram_gateway_url=gateway.url,
        **web_login,
    )


def wrong_code(code: str) -> str:
    """A code of the same length that differs from `code` in every digit."""
    return "".join(str((int(d) + 1) % 10) if d.isdigit() else "0" for d in code)


@contextlib.contextmanager
def _demo_environment(ca_path: Path) -> Iterator[None]:
    """While the demo runs: `requests` (under the Vonage SDK) trusts the stand-in's CA, and
    no proxy is used (everything is on 127.0.0.1). Restored afterwards."""
    names = ["REQUESTS_CA_BUNDLE", *_PROXY_VARIABLES, *(n.lower() for n in _PROXY_VARIABLES)]
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            os.environ.pop(name, None)
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca_path)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Lines:
    """Lines of a text stream, read in a daemon thread so the bot keeps running meanwhile
    (and a pending read of a terminal never holds up the end of the program)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="demo-input", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                line: str | None = self._stream.readline()
            except (OSError, ValueError):
                line = None
            if not line:
                line = None
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if line is None:
                return

    async def next(self) -> str | None:
        """The next line without its line ending, or None at the end of the input."""
        line = await self._queue.get()
        return None if line is None else line.rstrip("\r\n")

    def close(self) -> None:
        self._done.set()


class Chat:
    """The terminal as a Telegram chat: renders what the stand-ins see, sends what is typed."""

    def __init__(
        self,
        telegram: FakeTelegram,
        verify: FakeVerify,
        gateway: FakeGateway,
        out: TextIO,
        *,
        prompt: str | None = None,
        reply_timeout: float = REPLY_TIMEOUT,
    ) -> None:
        self.telegram = telegram
        self.verify = verify
        self.out = out
        self.persona = USER
        self.reply_timeout = reply_timeout
        self.last_code: str | None = None
        #: bot messages, edits and pop-ups shown so far
        self.answers = 0
        self._prompt = prompt
        self._prompt_shown = False
        # per chat: the message whose buttons a typed number presses, and those buttons
        self._offered: dict[int, tuple[SentMessage, list[dict[str, Any]]]] = {}
        for persona in (USER, ADMIN):
            telegram.user(persona.user_id, persona.first_name, persona.username)
        telegram.on_message = self._on_message
        telegram.on_delete = self._on_delete
        telegram.on_callback_answer = self._on_callback_answer
        verify.on_delivery = self._on_delivery
        gateway.on_message = self._on_gateway_message

    # -- output ----------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Print a line (above the prompt, if one is showing)."""
        if self._prompt_shown:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        if self._prompt_shown:
            self.out.write(self._prompt or "")
        self.out.flush()

    def show_prompt(self) -> None:
        if self._prompt and not self._prompt_shown:
            self.out.write(self._prompt)
            self.out.flush()
            self._prompt_shown = True

    def prompt_answered(self) -> None:
        """The user pressed Enter: the prompt line is finished."""
        self._prompt_shown = False

    def note(self, text: str) -> None:
        """A line from the demo itself (not from the bot)."""
        self.write(f"-- {text}")

    def _name(self, chat_id: int) -> str:
        person = self.telegram.users.get(chat_id)
        return person.first_name if person is not None else str(chat_id)

    def _on_message(self, sent: SentMessage) -> None:
        label = "bot"
        if sent.chat_id != self.persona.user_id:
            label += f" (to {self._name(sent.chat_id)})"
        if sent.edited:
            label += " (edited)"
        first, *rest = sent.plain_text.splitlines() or [""]
        self.write(f"{label}: {first}")
        indent = " " * (len(label) + 2)
        for line in rest:
            self.write((indent + line).rstrip())
        kind = sent.keyboard_kind
        offered = self._offered.get(sent.chat_id)
        if kind in ("inline", "reply"):
            buttons: list[dict[str, Any]] = []
            for row in sent.button_rows:
                cells = []
                for button in row:
                    buttons.append(button)
                    cells.append(f"[{len(buttons)}] {button.get('text', '')}")
                self.write("  " + "  ".join(cells))
            self._offered[sent.chat_id] = (sent, buttons)
        elif offered is not None and (
            offered[0] is sent or (kind == "remove" and offered[0].keyboard_kind == "reply")
        ):
            del self._offered[sent.chat_id]
        self.answers += 1

    def _on_delete(self, chat_id: int, message_id: int) -> None:
        whose = "your" if chat_id == self.persona.user_id else f"{self._name(chat_id)}'s"
        try:
            text = self.telegram.user_message(chat_id, message_id).get("text")
        except KeyError:
            self.note(f"the bot deleted its message {message_id}")
            return
        shown = f' "{text}"' if isinstance(text, str) else ""
        self.note(f"the bot deleted {whose} message{shown}")

    def _on_callback_answer(self, answer: CallbackAnswer) -> None:
        if answer.text:
            self.write(f"bot (pop-up): {answer.text}")
            self.answers += 1

    def _on_delivery(self, delivery: Delivery) -> None:
        self.last_code = delivery.code
        how = {"sms": "SMS", "voice": "Call"}.get(delivery.channel, delivery.channel)
        number = phone.pretty("+" + delivery.to)
        language = f" (in {delivery.locale})" if delivery.locale else ""
        self.write(f"[{how} to {number}] Your {delivery.brand} code is {delivery.code}{language}")

    def _on_gateway_message(self, message: GatewayMessage) -> None:
        self.last_code = message.code
        self.write(f"[Telegram code to {phone.pretty(message.phone_number)}] {message.code}")

    # -- input -----------------------------------------------------------------------------

    def substitute(self, line: str) -> str:
        """Fill in `{code}` and `{wrong_code}`; LookupError if no code was sent yet."""
        if CODE not in line and WRONG_CODE not in line:
            return line
        if self.last_code is None:
            raise LookupError("no code was sent yet")
        return line.replace(WRONG_CODE, wrong_code(self.last_code)).replace(CODE, self.last_code)

    def act(self, line: str) -> bool | None:
        """Do what a line says. True: something went to the bot (an answer is due); False:
        a demo command, nothing to wait for; None: the user wants to stop."""
        word, _, rest = line.partition(" ")
        command = word.lower()
        chat_id = self.persona.user_id
        if command in ("/quit", "/exit"):
            return None
        if command == "/admin":
            self.persona = USER if rest.strip().lower() == "off" else ADMIN
            self.note(f"you are now {self.persona.describe()}")
            return False
        if command == "/contact":
            self._share_contact(rest.strip() or self.persona.phone_number)
            return True
        if command == "/lang":
            self._set_language(rest.strip())
            return False
        offered = self._offered.get(chat_id)
        if offered is not None and _BUTTON_NUMBER.fullmatch(line):
            number = int(line)
            message, buttons = offered
            if number <= len(buttons):
                return self._press(message, buttons[number - 1])
        self.telegram.send_text(chat_id, line)
        return True

    def open_link(self, token: str) -> None:
        """A login page is on screen: open its Telegram link in this chat (`/start <token>`),
        as tapping its button or scanning its QR code with the phone would."""
        self.note("your browser shows the bot's login page; the demo opens its Telegram link")
        self.write(f"you: /start {token}")
        self.telegram.send_text(self.persona.user_id, f"/start {token}")

    def _set_language(self, code: str) -> None:
        """`/lang CODE`: the Telegram language the persona's messages carry from now on, as
        if it were changed in Telegram's settings (`/lang` alone: none)."""
        person = self.telegram.users[self.persona.user_id]
        person.language_code = code or None
        spoken = i18n.from_telegram(person.language_code)
        name = next(language.name for language in i18n.LANGUAGES if language.code == spoken)
        self.note(
            f"your Telegram language is now {code or 'not set'}: the bot speaks {name}, "
            "unless you chose another with /language"
        )

    def _share_contact(self, number: str) -> None:
        shown = phone.pretty("+" + number.lstrip("+")) if phone.parse(number) else number
        self.note(f"you share your contact: {shown}")
        self.telegram.send_contact(self.persona.user_id, number)

    def _press(self, message: SentMessage, button: dict[str, Any]) -> bool:
        text = str(button.get("text", ""))
        if message.keyboard_kind == "reply":
            # A reply keyboard sends its text, or the user's contact; one-time ones then hide.
            del self._offered[message.chat_id]
            if button.get("request_contact"):
                self._share_contact(self.persona.phone_number)
            else:
                self.note(f'you tap "{text}"')
                self.telegram.send_text(message.chat_id, text)
            return True
        data = button.get("callback_data")
        if not isinstance(data, str):
            self.note(f'the button "{text}" does nothing in the demo')
            return False
        self.note(f'you press "{text}"')
        try:
            self.telegram.press_button(message.chat_id, message.message_id, data)
        except (LookupError, ValueError):
            self.note("that button is no longer there")
            return False
        return True

    async def answered(self, before: int) -> bool:
        """Wait until the bot has answered (something shown since `before`) and gone quiet."""
        try:
            await self.telegram.wait_for(lambda: self.answers > before, self.reply_timeout)
            await self.telegram.wait_idle(self.reply_timeout, quiet=QUIET_SECONDS)
        except TimeoutError:
            return False
        return True


def banner(database: str, website: str | None = None) -> str:
    """What an interactive demo says first."""
    web = (
        ""
        if website is None
        else f"""
The example website is at {website}
Open it in a browser and click "Log in with Telegram": the login page's Telegram link is
opened here for you; log in, then press the button with the number that page shows.
"""
    )
    return f"""\
{DEMO_BRAND} demo: the real bot, talking to stand-ins for Telegram and Vonage Verify that run
on this machine. Nothing reaches Telegram and no SMS is sent: codes appear as [Telegram code
to ...] (or, for +1 numbers, which the stand-in Gateway cannot reach, as [SMS to ...]).

You are {USER.describe()}, in a private chat with the bot.
Type what you would send it:
  /login              start a login; then send a number such as +44 7400 123123
  /contact [NUMBER]   share your contact, like the "Share my phone number" button
                      (default {phone.pretty("+" + USER.phone_number)})
  1, 2, ...           press the button with that number under the bot's last message
  /whoami /logout /cancel /help /privacy /forget /language   the bot's own commands
  /lang CODE          set your Telegram language (es, pt-br, ru, de, en...) and try it
  /admin              become {ADMIN.first_name}, an admin (try /users and /stats)
  /admin off          be {USER.first_name} again
  /quit or Ctrl-D     end the demo
Database: {database}.
{web}"""


async def run_demo(
    script: TextIO | None,
    out: TextIO,
    *,
    database_url: str | None = None,
    err: TextIO | None = None,
    reply_timeout: float = REPLY_TIMEOUT,
    web: bool = False,
) -> int:
    """Run the demo; returns the exit status.

    `script`: the conversation to play (one message per line), or None to chat interactively
    on stdin. `database_url`: a database to use (migrated first), or None for a throwaway
    SQLite file. `web`: also the web login and the example website (`bot.demo.web`).
    Reads nothing from the environment or `.env`; changes it only while running
    (REQUESTS_CA_BUNDLE, proxies) and does not configure logging.
    """
    errors = err if err is not None else sys.stderr
    async with contextlib.AsyncExitStack() as stack:
        if database_url is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bot-demo-"))
            database_url = f"sqlite+aiosqlite:///{Path(directory) / 'demo.db'}"
            database = "a throwaway SQLite file, deleted at the end (--database-url sets another)"
        else:
            database = f"the one given with --database-url ({database_url.partition(':')[0]})"
        telegram = FakeTelegram(
            DEMO_TOKEN, bot_username=DEMO_BOT_USERNAME, bot_first_name=f"{DEMO_BRAND} (demo)"
        )
        verify = FakeVerify(api_key=DEMO_VONAGE_KEY, api_secret=DEMO_VONAGE_SECRET)
        gateway = FakeGateway(token=DEMO_GATEWAY_TOKEN)
        gateway.cannot_deliver = DEMO_NO_TELEGRAM
        gateway.report_delivery = web
        web_demo = None
        if web:
            try:
                web_demo = await stack.enter_async_context(prepared(DEMO_BOT_USERNAME))
            except (OSError, ImportError) as error:
                print(f"error: cannot load the example website: {error}", file=errors)
                return EXIT_CONFIG
        await stack.enter_async_context(telegram)
        await stack.enter_async_context(verify)
        await stack.enter_async_context(gateway)
        stack.enter_context(_demo_environment(verify.ca_path))
        try:
            settings = demo_settings(telegram, verify, gateway, database_url, web_demo)
        except (ValidationError, SettingError) as error:
            print(f"Configuration error: {describe_error(error)}", file=errors)
            return EXIT_CONFIG
        try:
            await upgrade(settings.database_url)
        except Exception as error:
            print(f"error: could not prepare the database: {type(error).__name__}", file=errors)
            return EXIT_NO_ANSWER
        interactive = script is None
        prompt = "> " if interactive and out.isatty() else None
        chat = Chat(telegram, verify, gateway, out, prompt=prompt, reply_timeout=reply_timeout)
        application = await stack.enter_async_context(running(settings))
        site_url = None
        if web_demo is not None:
            site_url = await stack.enter_async_context(
                web_demo.serving(application, settings, chat.open_link)
            )
        await stack.enter_async_context(polling(application, settings, poll_timeout=1))
        lines = _Lines(sys.stdin if script is None else script)
        stack.callback(lines.close)
        if interactive:
            chat.write(banner(database, site_url))
            chat.show_prompt()
        elif site_url is not None:
            chat.note(f"the example website: {site_url}")
        return await _converse(chat, lines, interactive=interactive, err=errors)
    raise AssertionError("unreachable")  # pragma: no cover - the stack does not swallow


async def _converse(chat: Chat, lines: _Lines, *, interactive: bool, err: TextIO) -> int:
    while (raw := await lines.next()) is not None:
        chat.prompt_answered()
        line = raw.strip()
        if not line or line.startswith("#"):
            chat.show_prompt()
            continue
        try:
            text = chat.substitute(line)
        except LookupError as error:
            if not interactive:
                print(f"error: {line!r}: {error}", file=err)
                return EXIT_NO_ANSWER
            chat.note(f"{error}: nothing was sent")
            chat.show_prompt()
            continue
        if not interactive or text != line:
            chat.write(f"you: {text}")
        before = chat.answers
        sent = chat.act(text)
        if sent is None:
            break
        if sent and not await chat.answered(before):
            if not interactive:
                print(
                    f"error: the bot did not answer {text!r} within {chat.reply_timeout:g} s",
                    file=err,
                )
                return EXIT_NO_ANSWER
            chat.note("the bot has not answered (yet)")
        chat.show_prompt()
    if interactive:
        chat.prompt_answered()
        chat.write("")
    return EXIT_OK


def main(
    script_path: str | None,
    *,
    verbose: bool = False,
    database_url: str | None = None,
    web: bool = False,
) -> int:
    """`python -m bot demo [--web] [--script FILE] [--database-url URL] [--verbose]`; returns
    the exit status."""
    from bot import logs

    logs.configure("INFO" if verbose else "WARNING")
    script: TextIO | None
    with contextlib.ExitStack() as stack:
        if script_path is None:
            script = None if sys.stdin.isatty() else sys.stdin
        elif script_path == "-":
            script = sys.stdin
        else:
            try:
                script = stack.enter_context(Path(script_path).open(encoding="utf-8"))
            except OSError as error:
                print(f"error: cannot read {script_path}: {error.strerror}", file=sys.stderr)
                return EXIT_CONFIG
        try:
            return asyncio.run(run_demo(script, sys.stdout, database_url=database_url, web=web))
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
    raise AssertionError("unreachable")  # pragma: no cover
